"""S3-compatible object storage (boto3 in a thread pool; every error becomes DependencyUnavailable)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ingest.errors import DependencyUnavailable, RawBodyMissing
from ingest.settings import CommonSettings


class S3Store:
    def __init__(self, settings: CommonSettings, *, max_workers: int = 8) -> None:
        self.bucket = settings.s3_bucket
        self._client = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.aws_region,
            aws_access_key_id=settings.aws_access_key_id.get_secret_value(),
            aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
            config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"},
                          max_pool_connections=max_workers * 2,
                          # no CRC32 over every segment in Python (botocore's default since 1.36): each
                          # payload's sha256 is in its metadata row already
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3")
        self.puts = 0

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "InvalidRange"):
                raise RawBodyMissing(f"object storage has no such object: {str(exc)[:200]}") from exc
            raise DependencyUnavailable(f"object storage unavailable: {str(exc)[:200]}") from exc
        except (BotoCoreError, OSError) as exc:
            raise DependencyUnavailable(f"object storage unavailable: {type(exc).__name__}: {str(exc)[:200]}") \
                from exc

    def ensure_bucket_sync(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self.bucket)

    async def ensure_bucket(self) -> None:
        await self._run(self.ensure_bucket_sync)

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.puts += 1
        await self._run(self._client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        resp = await self._run(self._client.get_object, Bucket=self.bucket, Key=key,
                               Range=f"bytes={offset}-{offset + length - 1}")
        data: bytes = await self._run(resp["Body"].read)
        return data

    async def put_lifecycle(self, rules: list[dict[str, Any]]) -> None:
        """Retention: let the bucket expire what the metadata no longer points to."""
        await self._run(self._client.put_bucket_lifecycle_configuration, Bucket=self.bucket,
                        LifecycleConfiguration={"Rules": rules})

    async def get_lifecycle(self) -> list[dict[str, Any]]:
        resp = await self._run(self._client.get_bucket_lifecycle_configuration, Bucket=self.bucket)
        return list(resp.get("Rules", []))

    async def get(self, key: str) -> bytes:
        resp = await self._run(self._client.get_object, Bucket=self.bucket, Key=key)
        data: bytes = await self._run(resp["Body"].read)
        return data

    async def stream(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        resp = await self._run(self._client.get_object, Bucket=self.bucket, Key=key)
        body = resp["Body"]
        while True:
            chunk: bytes = await self._run(body.read, chunk_size)
            if not chunk:
                break
            yield chunk

    async def open_body(self, key: str) -> Any:
        """The object's streaming body for blocking reads off the event loop (a parser thread; the feeds stage)."""
        resp = await self._run(self._client.get_object, Bucket=self.bucket, Key=key)
        return resp["Body"]

    async def ping(self) -> None:
        await self._run(self._client.head_bucket, Bucket=self.bucket)

    # multipart upload for streamed imports: parts of >= 5 MiB, never the whole file in memory
    async def multipart_start(self, key: str, content_type: str) -> str:
        resp = await self._run(self._client.create_multipart_upload, Bucket=self.bucket, Key=key,
                               ContentType=content_type)
        return str(resp["UploadId"])

    async def multipart_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        self.puts += 1
        resp = await self._run(self._client.upload_part, Bucket=self.bucket, Key=key, UploadId=upload_id,
                               PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": resp["ETag"]}

    async def multipart_complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        await self._run(self._client.complete_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id,
                        MultipartUpload={"Parts": parts})

    async def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            await self._run(self._client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id)
        except DependencyUnavailable:
            pass

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
