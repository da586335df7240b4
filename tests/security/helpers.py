"""What the attack tests assert: nothing stored (no raw_payloads row, no S3 object), and polling for caches."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3

from tests.stack import Stack


def s3_objects(stack: Stack) -> int:
    client = boto3.client("s3", endpoint_url=stack.env["S3_ENDPOINT_URL"], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=stack.env["S3_BUCKET"]):
        count += page.get("KeyCount", 0)
    return count


def raw_rows(stack: Stack, tenant: str | None = None) -> int:
    if tenant is None:
        return int(stack.query("SELECT count(*) AS n FROM raw_payloads")[0]["n"])
    return int(stack.query("SELECT count(*) AS n FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["n"])


class NothingStored:
    """``with NothingStored(stack): ...`` — the block must add no raw_payloads row and no S3 object."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def __enter__(self) -> NothingStored:
        self.rows, self.objects = raw_rows(self.stack), s3_objects(self.stack)
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            assert raw_rows(self.stack) == self.rows, "a refused request left a raw_payloads row"
            assert s3_objects(self.stack) == self.objects, "a refused request left an S3 object"


def eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Source secrets are cached by the receiver for a few seconds: rotation shows within that."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.25)
