"""Bulk feed uploads: ``POST /v1/integrations/seller/{provider}/import`` streamed to S3, never held in memory.

The body goes to one S3 object through a multipart upload (8 MiB parts), hashed as it passes; then the raw
log metadata row names the whole object (offset 0, length = size) and a ``RawReceived`` without inline body
goes to ``integration.raw``. The 202 comes only after the object is complete and the row committed.

Auth: a feed file carries no signature, so the uploader presents ``Authorization: Bearer <token>`` where the
token is the provider source's secret (``pos-ingest sources add TENANT google-merchant --secret S``) or the
operators' ``ADMIN_TOKEN``. Query ``?feed=NAME`` names the feed (default ``default``; the snapshot that
deactivation diffs against is per tenant, provider and feed) and ``?mode=supplemental`` marks a feed that
only amends items (no deactivation).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import datetime, timezone

import orjson
from aiohttp import web

from ingest.db.pool import PG_OUTAGE
from ingest.errors import DependencyUnavailable, InvalidSignature
from ingest.rawlog.publisher import raw_received
from ingest.rawlog.s3 import S3Store
from services.receiver.handlers import UNAUTHORIZED, Receiver, address_refused, known_tenant, resolve_route
from services.receiver.http import error, redact_headers

log = logging.getLogger(__name__)

#: S3 multipart parts must be >= 5 MiB except the last; one part is the most the receiver holds per upload
PART_BYTES = 8 * 1024 * 1024
READ_BYTES = 256 * 1024
IMPORT_TYPES = frozenset({"text/csv", "text/tab-separated-values", "text/plain", "application/xml", "text/xml",
                          "application/rss+xml", "application/atom+xml", "application/json",
                          "application/x-ndjson", "application/jsonl", "application/octet-stream", ""})
FEED_MODES = ("primary", "supplemental")

INSERT_IMPORT_ROW = (
    "INSERT INTO raw_payloads (raw_id, received_at, tenant_id, provider, kind, family, route, segment_key, "
    "segment_offset, segment_length, sha256, content_type, headers, size) "
    "VALUES ($1::uuid, $2, $3, $4, 'seller', 'import', $5, $6, 0, $7, $8, $9, $10::jsonb, $7)")


def import_key(tenant: str, raw_id: str, now: datetime) -> str:
    return f"imports/{tenant}/{now:%Y/%m/%d}/{raw_id}"


def _bearer(request: web.Request) -> str:
    value = request.headers.get("Authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else ""


def _token_ok(token: str, candidates: list[str]) -> bool:
    # every candidate compared in constant time, so timing says nothing about which one nearly matched
    ok = False
    for candidate in candidates:
        if candidate and hmac.compare_digest(token.encode(), candidate.encode()):
            ok = True
    return bool(token) and ok


class UploadTooLarge(Exception):
    pass


async def stream_to_s3(request: web.Request, store: S3Store, key: str, content_type: str, limit: int
                       ) -> tuple[int, str]:
    """The request body into ``key`` (multipart); (size, sha256). Aborts the upload on any failure."""
    upload_id = await store.multipart_start(key, content_type or "application/octet-stream")
    parts: list[dict[str, object]] = []
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray()
    done = False
    try:
        async for chunk in request.content.iter_chunked(READ_BYTES):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge()
            digest.update(chunk)
            buffer += chunk
            if len(buffer) >= PART_BYTES:
                parts.append(await store.multipart_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                buffer.clear()
        if buffer or not parts:
            parts.append(await store.multipart_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            buffer.clear()
        await store.multipart_complete(key, upload_id, parts)  # type: ignore[arg-type]
        done = True
    finally:
        if not done:
            await store.multipart_abort(key, upload_id)
    return size, digest.hexdigest()


async def receive_import(request: web.Request, rx: Receiver, store: S3Store) -> web.Response:
    settings = rx.settings
    resolved = resolve_route("seller", request.match_info["provider"], "import")
    if isinstance(resolved, web.Response):
        return resolved
    provider = resolved[0]
    tenant = await known_tenant(request, rx)
    if isinstance(tenant, web.Response):
        return tenant
    retry = {"Retry-After": str(settings.retry_after_s)}
    try:
        source = await rx.source(tenant, provider)
    except PG_OUTAGE:
        return error(503, "database unavailable", "retry later", headers=retry)
    remote = rx.client(request)
    # the source's allowlist covers its import route too, before a byte of the file is read
    refused = address_refused(rx, request, tenant, provider, source, remote)
    if refused is not None:
        return refused
    admin = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not _token_ok(_bearer(request), [*(source.secrets if source else []), admin]):
        reason = "no_source" if source is None and not admin else "bad_token"
        rx.record_auth_failure(tenant, provider, request.path,
                               InvalidSignature("import bearer token did not verify", reason_code=reason), remote)
        return error(401, *UNAUTHORIZED)
    if request.content_length is not None and request.content_length > settings.max_import_bytes:
        return error(413, "payload too large", f"limit is {settings.max_import_bytes} bytes")
    content_type = request.headers.get("Content-Type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in IMPORT_TYPES:
        return error(415, "unsupported media type",
                     f"{media} is not a feed type (CSV, TSV, XML, JSON, JSON Lines)")
    mode = request.query.get("mode", "primary")
    if mode not in FEED_MODES:
        return error(400, "invalid mode", f"mode must be one of {', '.join(FEED_MODES)}")
    raw_id = str(uuid.uuid4())
    received_at = datetime.now(timezone.utc)
    key = import_key(tenant, raw_id, received_at)
    try:
        size, sha256 = await stream_to_s3(request, store, key, content_type, settings.max_import_bytes)
    except UploadTooLarge:
        return error(413, "payload too large", f"limit is {settings.max_import_bytes} bytes")
    except DependencyUnavailable as exc:
        return error(503, "storage unavailable", exc.message[:200], headers=retry)
    if size == 0:
        return error(400, "empty file", "the import body is empty")
    headers = redact_headers(request.headers)
    route = request.path_qs  # the query (feed name, mode) is part of what was asked, kept with the raw log
    try:
        await rx.pool.execute(INSERT_IMPORT_ROW, raw_id, received_at, tenant, provider, route, key, size, sha256,
                              content_type, orjson.dumps(headers).decode())
    except PG_OUTAGE:
        # the object stays orphaned: nothing acknowledged refers to it
        return error(503, "database unavailable", "retry later", headers=retry)
    record = raw_received(raw_id=raw_id, tenant_id=tenant, provider=provider, kind="seller", family="import",
                          route=route, received_at=received_at, content_type=content_type, headers=headers,
                          sha256=sha256, size=size, segment_key=key, segment_offset=0, segment_length=size,
                          body=None)
    rx.publisher.publish(record)  # best effort: the sweeper republishes an unpublished row
    log.info("import accepted", extra={"rawId": raw_id, "tenant": tenant, "provider": provider, "bytes": size})
    return web.json_response({"rawId": raw_id, "status": "accepted"}, status=202)


def register(app: web.Application, rx: Receiver, store: S3Store) -> None:
    """Adds the import route; call before the generic webhook route so it wins."""

    async def handler(request: web.Request) -> web.Response:
        return await receive_import(request, rx, store)

    # one trailing slash is the same route (as for webhooks: handlers.resolve_route)
    app.router.add_post("/v1/integrations/seller/{provider}/import{slash:/?}", handler)
