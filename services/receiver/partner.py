"""Partner Standard API and the key admin API on the receiver (contract §4): X-Api-Key, idempotent writes
into the same durable raw log, operation status, OpenAPI and docs."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest import apikeys
from ingest.adapters.standard import payloads, route_family
from ingest.adapters.standard.openapi import openapi_document
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE
from ingest.errors import DependencyUnavailable
from ingest.rawlog.writer import PendingRaw
from services.receiver.handlers import Receiver
from services.receiver.http import error, jsonable, redact_headers, tenant_of
from services.receiver.security import (
    AuthFailure,
    bearer_matches,
    ip_allowed,
    json_body_problem,
    parse_networks,
    too_many,
)

PROVIDER = "standard"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# an abandoned claim (its request died between claiming and answering) is taken over after this long; safe,
# because the pipeline deduplicates on the same Idempotency-Key / refCode
_ABANDONED_S = 30

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _unavailable(rx: Receiver, what: str = "database unavailable") -> web.Response:
    return error(503, what, "nothing was stored; retry later with the same Idempotency-Key",
                 headers={"Retry-After": str(rx.settings.retry_after_s)})


# --- authentication ---------------------------------------------------------------------------
def unauthorized() -> web.Response:
    """Contract §3: the same 401 whatever the reason (missing, invalid, expired, revoked, another tenant's key,
    an address the source does not allow); the reason goes to the audit log only."""
    return error(401, "unauthorized", "a valid X-Api-Key for this tenant is required")


async def authenticate(request: web.Request, rx: Receiver) -> tuple[str, apikeys.ApiKey] | web.Response:
    """(tenant, key) for a request on a tenant's host with a valid key of that tenant, else the error."""
    tenant = tenant_of(request.host, rx.settings.tenant_base_domain)
    if tenant is None:
        return error(404, "unknown tenant", f"no tenant in host {request.host[:100]!r}")
    presented = request.headers.get("X-Api-Key")
    remote = rx.client(request)
    try:
        if not await rx.tenant_known(tenant):
            return error(404, "unknown tenant", f"tenant {tenant!r} does not exist")
        # the lookup runs for a missing key too, so "missing" and "invalid" take the same time
        key = await apikeys.verify(rx.pool, tenant, presented)
        source = await rx.source(tenant, PROVIDER)
    except PG_OUTAGE:
        return _unavailable(rx)
    if key is None:
        reason = "missing_api_key" if not presented else "invalid_api_key"
        rx.auth_failed(AuthFailure("apikey", reason, tenant, request.path, remote))
        return unauthorized()
    # a `standard` source, when the operator configured one, narrows the partner by address and rate
    if source is not None and not ip_allowed(remote, parse_networks(source.ip_allowlist)):
        rx.auth_failed(AuthFailure("apikey", "ip_not_allowed", tenant, request.path, remote))
        return unauthorized()
    wait = rx.limiter.take(("key", key.key_id), float(key.rate_limit_per_s or rx.settings.partner_rate_limit_per_s))
    if not wait and source is not None and source.rate_limit_per_s:
        wait = rx.limiter.take(("source", source.source_id), float(source.rate_limit_per_s))
    if wait:
        return too_many(wait, "API key")
    return tenant, key


async def whoami(request: web.Request, rx: Receiver) -> web.Response:
    auth = await authenticate(request, rx)
    if isinstance(auth, web.Response):
        return auth
    tenant, key = auth
    return web.json_response({"authenticated": True, "tenantId": tenant, "apiKeyId": key.key_id,
                              "expiresAt": jsonable(key.expires_at.astimezone(timezone.utc))
                              if key.expires_at else None})


# --- idempotency ------------------------------------------------------------------------------
class Idempotency:
    """``idempotency_keys`` rows: a claim (status 0) before storing, the response after."""

    def __init__(self, rx: Receiver) -> None:
        self.rx = rx

    async def claim(self, tenant: str, key: str, request_hash: str) -> web.Response | None:
        """None when this request owns the key now; else the first response (replay) or a 409."""
        owned = await self.rx.pool.fetchval(
            "INSERT INTO idempotency_keys (tenant_id, idem_key, request_hash, response_status, response_body) "
            "VALUES ($1, $2, $3, 0, '{}') ON CONFLICT (tenant_id, idem_key) DO UPDATE SET "
            "request_hash = EXCLUDED.request_hash, response_status = 0, response_body = '{}', created_at = now() "
            "WHERE idempotency_keys.created_at < now() - make_interval(hours => $4) "
            "OR (idempotency_keys.response_status = 0 AND idempotency_keys.created_at < now() - "
            "make_interval(secs => $5)) RETURNING true",
            tenant, key, request_hash, self.rx.settings.idempotency_retention_h, _ABANDONED_S)
        if owned:
            return None
        row = await self.rx.pool.fetchrow("SELECT request_hash, response_status, response_body FROM idempotency_keys "
                                          "WHERE tenant_id = $1 AND idem_key = $2", tenant, key)
        if row is None:  # expired and purged between the two statements: vanishingly rare, let them retry
            return error(409, "conflict", "retry this request", headers={"Retry-After": "1"})
        if row["request_hash"] != request_hash:
            return error(409, "conflict", "Idempotency-Key reused with a different request body")
        if row["response_status"] == 0:
            return error(409, "conflict", "the first request with this Idempotency-Key is still being stored",
                         headers={"Retry-After": "1"})
        body = row["response_body"] if isinstance(row["response_body"], dict) else json.loads(row["response_body"])
        return web.json_response(body, status=row["response_status"], headers={"Idempotent-Replayed": "true"})

    async def answer(self, tenant: str, key: str, status: int, body: dict[str, Any]) -> None:
        await self.rx.pool.execute("UPDATE idempotency_keys SET response_status = $3, response_body = $4::jsonb "
                                   "WHERE tenant_id = $1 AND idem_key = $2", tenant, key, status, json.dumps(body))

    async def release(self, tenant: str, key: str) -> None:
        """Nothing was stored: forget the claim so that the retry does the work."""
        await self.rx.pool.execute("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2 "
                                   "AND response_status = 0", tenant, key)


def idempotency_key(request: web.Request, body: bytes, path: str) -> str | None | web.Response:
    """The header's key, else the body's ``refCode`` scoped by path (the same refCode on another outlet's path
    is another request), else None; a malformed header is a 400."""
    header = request.headers.get("Idempotency-Key")
    if header is not None:
        if not _IDEMPOTENCY_KEY.match(header):
            return error(400, "invalid request", "Idempotency-Key: 1 to 255 printable ASCII characters, no spaces")
        return f"h:{header}"
    document = json.loads(body)  # request_error validated it already
    ref = document.get("refCode") if isinstance(document, dict) else None
    return f"r:{path}:{ref}" if ref else None


# --- writes -----------------------------------------------------------------------------------
async def submit(request: web.Request, rx: Receiver) -> web.Response:
    matched = route_family(request.method, request.path)
    if matched is None:
        return error(404, "unknown route", "no such operation (ids: letters, digits and . _ ~ : @ - only)")
    family, _ = matched
    auth = await authenticate(request, rx)
    if isinstance(auth, web.Response):
        return auth
    tenant, _key = auth
    settings = rx.settings
    content_type = request.headers.get("Content-Type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return error(415, "unsupported media type", "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return error(413, "payload too large", f"limit is {settings.max_body_bytes} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, "payload too large", f"limit is {settings.max_body_bytes} bytes")
    problem = json_body_problem(body, settings.max_json_depth)
    if problem is not None:
        return error(400, "invalid request body", problem)
    invalid = payloads.request_error(family, body)
    if invalid is not None:
        return web.json_response(invalid, status=400)
    idem = idempotency_key(request, body, request.path)
    if isinstance(idem, web.Response):
        return idem
    keys = Idempotency(rx)
    request_hash = hashlib.sha256(f"{request.method} {request.path}\n".encode() + body).hexdigest()
    try:
        if idem is not None:
            earlier = await keys.claim(tenant, idem, request_hash)
            if earlier is not None:
                return earlier
    except PG_OUTAGE:
        return _unavailable(rx)
    pending = PendingRaw(tenant_id=tenant, provider=PROVIDER, kind="partner", family=family, route=request.path,
                         content_type=content_type, headers=redact_headers(request.headers), body=body,
                         received_at=datetime.now(timezone.utc))
    try:
        durable = await rx.writer.append(pending)
    except DependencyUnavailable as exc:
        if idem is not None:
            try:
                await keys.release(tenant, idem)
            except PG_OUTAGE:
                pass  # the claim is taken over after _ABANDONED_S
        return error(503, "storage unavailable", f"nothing was stored ({exc.message[:120]}); retry later with the "
                     "same Idempotency-Key", headers={"Retry-After": str(settings.retry_after_s)})
    reply = {"rawId": durable.raw_id, "status": "accepted"}
    if idem is not None:
        try:
            await keys.answer(tenant, idem, 202, reply)
        except PG_OUTAGE:
            pass  # stored durably; a retry is deduplicated by the pipeline on the same key
    return web.json_response(reply, status=202)


# --- operations -------------------------------------------------------------------------------
OPERATION_SQL = """
SELECT r.raw_id::text AS raw_id, r.provider, r.family, r.received_at, r.published_at,
       o.outcome, o.command_types, f.class, f.reason_code, f.message
FROM raw_payloads r
LEFT JOIN LATERAL (SELECT outcome, command_types FROM outcomes WHERE raw_id = r.raw_id
                   ORDER BY recorded_at DESC LIMIT 1) o ON true
LEFT JOIN LATERAL (SELECT class, reason_code, message FROM failures WHERE raw_id = r.raw_id AND resolved_at IS NULL
                   ORDER BY recorded_at DESC LIMIT 1) f ON true
WHERE r.raw_id = $1::uuid AND r.tenant_id = $2
ORDER BY r.received_at DESC LIMIT 1
"""


def operation_view(row: dict[str, Any]) -> dict[str, Any]:
    """The partner's view of one submission (pure: a row of OPERATION_SQL in, the Operation body out)."""
    failure = ({"class": row["class"], "reasonCode": row["reason_code"], "message": row["message"]}
               if row.get("class") else None)
    if row.get("outcome") in ("processed", "skipped"):
        status = "processed"
    elif failure is not None:
        status = "failed"
    elif row.get("published_at") is not None:
        status = "processing"
    else:
        status = "accepted"
    out: dict[str, Any] = {"rawId": row["raw_id"], "status": status, "provider": row["provider"],
                           "family": row["family"], "receivedAt": jsonable(row["received_at"].astimezone(timezone.utc)),
                           "commands": dict(sorted(Counter(row.get("command_types") or []).items()))
                           if status == "processed" else {}}
    if failure is not None:
        out["failure"] = failure
    return out


async def operation(request: web.Request, rx: Receiver) -> web.Response:
    auth = await authenticate(request, rx)
    if isinstance(auth, web.Response):
        return auth
    tenant, _ = auth
    raw_id = request.match_info["raw_id"]
    try:
        uuid.UUID(raw_id)
    except ValueError:
        return error(404, "not found", "no such operation for this tenant")
    try:
        row = await rx.pool.fetchrow(OPERATION_SQL, raw_id, tenant)
    except PG_OUTAGE:
        return _unavailable(rx)
    if row is None:
        return error(404, "not found", "no such operation for this tenant")
    return web.json_response(operation_view(dict(row)))


# --- OpenAPI and docs -------------------------------------------------------------------------
@cache
def _docs_html() -> bytes:
    return (Path(payloads.__file__).parent / "docs.html").read_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(f"{request.scheme}://{request.host}"))


async def docs(request: web.Request) -> web.Response:
    return web.Response(body=_docs_html(), content_type="text/html", charset="utf-8")


# --- admin API for keys -----------------------------------------------------------------------
class IssueKey(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field("", max_length=200)
    expires_at: payloads.DateTime | None = Field(None, alias="expiresAt")
    expires_in_s: int | None = Field(None, alias="expiresInSeconds", gt=0, le=10 * 365 * 86400, strict=True)
    rate_limit_per_s: int | None = Field(None, alias="rateLimitPerS", gt=0, le=100_000, strict=True)


def admin(handler: Callable[[web.Request, Receiver, str | None], Awaitable[web.Response]], rx: Receiver) -> Handler:
    """``Authorization: Bearer $ADMIN_TOKEN`` (constant-time), or 401 and an audited auth failure."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        token = rx.settings.admin_token.get_secret_value() if rx.settings.admin_token else None
        remote = rx.client(request)
        if not bearer_matches(request.headers.get("Authorization"), token):
            rx.auth_failed(AuthFailure("admin", "invalid_admin_token", None, request.path, remote))
            return error(401, "unauthorized", "Authorization: Bearer <ADMIN_TOKEN> is required")
        try:
            return await handler(request, rx, remote)
        except PG_OUTAGE:
            return _unavailable(rx)

    return guarded


async def admin_issue(request: web.Request, rx: Receiver, remote: str | None) -> web.Response:
    tenant = request.match_info["tenant"]
    if not repositories.TENANT_ID.match(tenant):
        return error(404, "unknown tenant", "no such tenant")
    body = await request.read()
    try:
        spec = IssueKey.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return web.json_response(payloads.bad_request(exc), status=400)
    expires = spec.expires_at or (datetime.now(timezone.utc) + timedelta(seconds=spec.expires_in_s)
                                  if spec.expires_in_s else None)
    issued = await apikeys.issue_with(rx.pool, tenant, expires_at=expires, name=spec.name, actor="admin-api",
                                      rate_limit_per_s=spec.rate_limit_per_s, remote_addr=remote)
    if issued is None:
        return error(404, "unknown tenant", f"tenant {tenant!r} does not exist")
    issued["expiresAt"] = jsonable(expires) if expires else None
    return web.json_response(issued, status=201)


async def admin_revoke(request: web.Request, rx: Receiver, remote: str | None) -> web.Response:
    key_id = request.match_info["key_id"]
    if not key_id.isdigit() or len(key_id) > 18:
        return error(404, "not found", "no such active key")
    tenant = await apikeys.revoke_with(rx.pool, int(key_id), actor="admin-api", remote_addr=remote)
    if tenant is None:
        return error(404, "not found", "no such active key")
    return web.json_response({"apiKeyId": int(key_id), "tenantId": tenant, "revoked": True})


async def admin_list(request: web.Request, rx: Receiver, remote: str | None) -> web.Response:
    tenant = request.match_info["tenant"]
    if not repositories.TENANT_ID.match(tenant) or not await repositories.tenant_exists(rx.pool, tenant):
        return error(404, "unknown tenant", "no such tenant")
    keys = [{k: jsonable(v) for k, v in item.items()} for item in await apikeys.list_with(rx.pool, tenant)]
    return web.json_response({"tenantId": tenant, "keys": keys})


def add_routes(app: web.Application, rx: Receiver) -> None:
    def bind(fn: Callable[[web.Request, Receiver], Awaitable[web.Response]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await fn(request, rx)

        return handler

    router = app.router
    router.add_get("/api/v1/auth/whoami", bind(whoami))
    router.add_post("/api/v1/outlets/sync", bind(submit))
    router.add_post("/api/v1/products/sync", bind(submit))
    router.add_patch("/api/v1/outlets/{id}/status", bind(submit))
    router.add_patch("/api/v1/outlets/{id}/busy", bind(submit))
    router.add_patch("/api/v1/orders/{id}/status", bind(submit))
    router.add_get("/api/v1/operations/{raw_id}", bind(operation))
    router.add_get("/openapi.json", openapi)
    router.add_get("/docs", docs)
    router.add_post("/admin/v1/tenants/{tenant}/keys", admin(admin_issue, rx))
    router.add_get("/admin/v1/tenants/{tenant}/keys", admin(admin_list, rx))
    router.add_delete("/admin/v1/keys/{key_id}", admin(admin_revoke, rx))
