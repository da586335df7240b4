"""Receiver request handlers: route → tenant → size/type → auth → durable raw log → answer."""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ingest.adapters.base import ProviderAdapter, Reply
from ingest.adapters.registry import ADAPTERS, UnknownProvider, adapter_class
from ingest.crypto import SecretBox
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE
from ingest.errors import DependencyUnavailable, InvalidSignature
from ingest.kafka.results import Failure, failure_record
from ingest.rawlog.publisher import RawPublisher
from ingest.rawlog.writer import PendingRaw, RawLogWriter
from ingest.settings import ReceiverSettings
from services.receiver.http import error, redact_headers, tenant_of
from services.receiver.security import (
    AuthFailure,
    AuthFailureLog,
    Network,
    RateLimiter,
    client_address,
    ip_allowed,
    json_body_problem,
    parse_networks,
    too_many,
)

log = logging.getLogger(__name__)

KIND_FAMILIES: dict[str, frozenset[str]] = {
    "pos": frozenset({"menu", "inventory", "store-status", "order-status"}),
    "erp": frozenset({"stock"}),
    "seller": frozenset({"catalog", "inventory"}),
}
ACCEPTED_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded", "text/csv",
                  "text/tab-separated-values", "application/xml", "text/xml", "application/octet-stream")
UNAUTHORIZED = ("unauthorized", "signature or credentials did not verify")


class TtlCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl = ttl_s
        self._items: dict[Any, tuple[float, Any]] = {}
        self._loading: dict[Any, asyncio.Task[Any]] = {}

    def get(self, key: Any) -> tuple[bool, Any]:
        hit = self._items.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return True, hit[1]
        return False, None

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = (time.monotonic(), value)

    async def get_or_load(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, or ``load()``'s — one load per key at a time: when an entry expires under load,
        the hundreds of requests in flight for it share one query instead of each sending its own (a load
        error reaches every waiter and is not cached)."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.get_running_loop().create_task(self._load(key, load))
            # retrieved even when every waiter went away (a client hanging up), so it is never "unretrieved"
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        # shield: one waiter cancelled (its client hung up) must not cancel the others' load
        return await asyncio.shield(task)

    async def _load(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await load()
            self.put(key, value)
            return value
        finally:
            self._loading.pop(key, None)


@dataclass
class Receiver:
    """The receiver's dependencies (built by ``app.create_app``)."""

    settings: ReceiverSettings
    pool: Any
    writer: RawLogWriter
    publisher: RawPublisher
    box: SecretBox
    tenants: TtlCache = field(default_factory=lambda: TtlCache(5.0))
    sources: TtlCache = field(default_factory=lambda: TtlCache(5.0))
    limiter: RateLimiter = field(default_factory=RateLimiter)
    auth_log: AuthFailureLog | None = None
    store_status: Any = None  # StoreStatusLookup: answers store-status queries (PetPooja get_store_status)

    def __post_init__(self) -> None:
        self.trusted = tuple(parse_networks(self.settings.trusted_proxies))

    def client(self, request: web.Request) -> str | None:
        """The client's address (``X-Forwarded-For`` believed only from TRUSTED_PROXIES)."""
        return _client_text(request.remote, request.headers.get("X-Forwarded-For"), self.trusted)

    def auth_failed(self, failure: AuthFailure, exc: Exception | None = None) -> None:
        log.info("auth failed", extra={"tenant": failure.tenant_id, "actor": failure.actor,
                                       "reason": failure.reason, "remote": failure.remote_addr})
        if self.auth_log is not None:
            self.auth_log.record(failure, exc)

    async def tenant_known(self, tenant: str) -> bool:
        return bool(await self.tenants.get_or_load(tenant, lambda: repositories.tenant_exists(self.pool, tenant)))

    async def source(self, tenant: str, provider: str) -> repositories.Source | None:
        return await self.sources.get_or_load(  # type: ignore[no-any-return]
            (tenant, provider), lambda: repositories.load_source(self.pool, self.box, tenant, provider))

    def adapter(self, provider: str, source: repositories.Source | None) -> ProviderAdapter:  # type: ignore[type-arg]
        options = {"tolerance_seconds": self.settings.signature_tolerance_s, **(source.options if source else {})}
        return adapter_class(provider)(source.secrets if source else [], options=options)

    def record_auth_failure(self, tenant: str, provider: str, route: str, exc: InvalidSignature,
                            remote_addr: str | None = None) -> None:
        """An ``auth`` failure (audit row + failure record, throttled), without the body (never trusted, so
        never stored)."""
        if self.auth_log is None:
            rec = failure_record(None, Failure(exc, details={"route": route}), stage="receiver", index=0,
                                 origin=None, raw={"tenantId": tenant, "provider": provider})
            self.publisher.publish_failure(rec)
            return
        self.auth_failed(AuthFailure(f"webhook:{provider}", exc.reason_code, tenant, route, remote_addr,
                                     provider=provider), exc)


@functools.lru_cache(maxsize=4096)
def _client_text(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    # the same few (peer, X-Forwarded-For) pairs on every request: parsing and formatting them was ~5% of the
    # receiver's CPU; bounded, so hostile X-Forwarded-For values cannot grow it
    address = client_address(peer, forwarded_for, trusted)
    return str(address) if address is not None else None


def _tenant_or_404(request: web.Request, settings: ReceiverSettings) -> str | web.Response:
    tenant = tenant_of(request.host, settings.tenant_base_domain)
    if tenant is None:
        return error(404, "unknown tenant", f"no tenant in host {request.host!r}")
    return tenant


async def known_tenant(request: web.Request, rx: Receiver) -> str | web.Response:
    """The Host's tenant when it exists; else its 404 (503 when the database cannot say)."""
    tenant = _tenant_or_404(request, rx.settings)
    if isinstance(tenant, web.Response):
        return tenant
    try:
        if not await rx.tenant_known(tenant):
            return error(404, "unknown tenant", f"tenant {tenant!r} does not exist")
    except PG_OUTAGE:
        return error(503, "database unavailable", "retry later",
                     headers={"Retry-After": str(rx.settings.retry_after_s)})
    return tenant


def address_refused(rx: Receiver, request: web.Request, tenant: str, provider: str,
                    source: repositories.Source | None, remote: str | None) -> web.Response | None:
    """The 401 (and an audited ``ip_not_allowed``) when the source's allowlist does not hold the client."""
    if source is None or ip_allowed(remote, parse_networks(source.ip_allowlist)):
        return None
    rx.record_auth_failure(tenant, provider, request.path,
                           InvalidSignature(f"{remote} is not in the source's allowlist", reason_code="ip_not_allowed"),
                           remote)
    return error(401, *UNAUTHORIZED)


def _reply(reply: Reply) -> web.Response:
    if isinstance(reply.body, (dict, list)):
        return web.json_response(reply.body, status=reply.status)
    body = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
    return web.Response(body=body, status=reply.status, content_type=reply.content_type)


async def receive(request: web.Request, rx: Receiver, *, kind: str, provider: str, family: str) -> web.Response:
    settings = rx.settings
    tenant = await known_tenant(request, rx)
    if isinstance(tenant, web.Response):
        return tenant
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return error(413, "payload too large", f"limit is {settings.max_body_bytes} bytes")
    content_type = request.headers.get("Content-Type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and not (media in ACCEPTED_TYPES or media.endswith("+json")):
        return error(415, "unsupported media type", f"{media} is not accepted here")
    try:
        source = await rx.source(tenant, provider)
    except PG_OUTAGE:
        return error(503, "database unavailable", "retry later",
                     headers={"Retry-After": str(settings.retry_after_s)})
    remote = rx.client(request)
    # before the body is read: a refused sender costs us no bandwidth and no memory
    refused = address_refused(rx, request, tenant, provider, source, remote)
    if refused is not None:
        return refused
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, "payload too large", f"limit is {settings.max_body_bytes} bytes")
    # the adapter carries the source's secrets and options: verification and some vendors' replies need them
    adapter = rx.adapter(provider, source)
    pre = adapter.preflight(family, request.headers, body)
    if pre is not None and not pre.enter_pipeline:
        return _reply(pre)
    try:
        if source is None:
            raise InvalidSignature(f"no {provider} source configured for {tenant}", reason_code="no_source")
        adapter.verify_signature(request.headers, body)
    except InvalidSignature as exc:
        rx.record_auth_failure(tenant, provider, request.path, exc, remote)
        return error(401, *UNAUTHORIZED)
    # the source's rate limit is the vendor's, so only its verified requests spend it: anyone who knows the URL
    # could otherwise drain it with unsigned requests and have the vendor's real webhooks refused
    if source.rate_limit_per_s:
        wait = rx.limiter.take(("source", source.source_id), float(source.rate_limit_per_s))
        if wait:
            return too_many(wait, "source")
    if media == "application/json" or media.endswith("+json"):
        problem = json_body_problem(body, settings.max_json_depth)
        if problem is not None:
            return error(400, "invalid JSON", problem)
    pending = PendingRaw(tenant_id=tenant, provider=provider, kind=kind, family=family, route=request.path,
                         content_type=content_type, headers=redact_headers(request.headers), body=body,
                         received_at=datetime.now(timezone.utc))
    try:
        durable = await rx.writer.append(pending)
    except DependencyUnavailable as exc:
        return error(503, "storage unavailable", exc.message[:200],
                     headers={"Retry-After": str(settings.retry_after_s)})
    log.debug("accepted", extra={"rawId": durable.raw_id, "tenant": tenant, "provider": provider})
    store_query = adapter.store_status_query(family, body) if rx.store_status is not None else None
    if store_query is not None:
        # the vendor asks for the store's current status: only the views know it (never a 5xx for this read)
        status, stale = await rx.store_status.current(tenant, provider, store_query)
        return _reply(adapter.status_reply(status, stale=stale))
    base_url = f"{request.scheme}://{request.host}"
    custom = adapter.accepted_reply(family, body, raw_id=durable.raw_id, base_url=base_url)
    if custom is not None:
        return _reply(custom)
    return accepted(durable.raw_id)


def accepted(raw_id: str) -> web.Response:
    """The 202 body, ``{"rawId": "<uuid>", "status": "accepted"}`` as ``json_response`` wrote it, from prebuilt
    bytes (a raw id is a UUID: nothing to escape)."""
    return web.Response(body=b'{"rawId": "%s", "status": "accepted"}' % raw_id.encode(), status=202,
                        content_type="application/json", charset="utf-8")


async def answer_query(request: web.Request, rx: Receiver, *, kind: str, provider: str, tail: str) -> web.Response:
    """GET handshakes on provider-specific paths (e.g. Uniware's ``/authToken``): answered from the source's
    secrets by the adapter, never stored."""
    tenant = await known_tenant(request, rx)
    if isinstance(tenant, web.Response):
        return tenant
    try:
        source = await rx.source(tenant, provider)
    except PG_OUTAGE:
        return error(503, "database unavailable", "retry later",
                     headers={"Retry-After": str(rx.settings.retry_after_s)})
    remote = rx.client(request)
    if source is None or not ip_allowed(remote, parse_networks(source.ip_allowlist)):
        return error(401, *UNAUTHORIZED)
    reply = rx.adapter(provider, source).query_reply(tail, request.query)
    if reply is None:
        return error(404, "unknown route", f"no GET {tail!r} route for {provider}")
    return _reply(reply)


async def post_only(request: web.Request, rx: Receiver) -> web.Response:
    """A method other than POST on a webhook route: 405, on a tenant's host (an unknown tenant is a 404 whatever
    the method)."""
    tenant = await known_tenant(request, rx)
    if isinstance(tenant, web.Response):
        return tenant
    return error(405, "method not allowed", f"{request.method} is not allowed on {request.path[:200]!r}; use POST",
                 headers={"Allow": "POST"})


def resolve_route(kind: str, provider: str, tail: str) -> tuple[str, str] | web.Response:
    """(provider, family) for a path, or the 404 envelope naming what is wrong. One trailing slash is the same
    route: vendors paste URLs into dashboards that add one."""
    if kind not in KIND_FAMILIES and kind != "partner":
        return error(404, "unknown route", f"no integration kind {kind[:64]!r}")
    tail = tail[:-1] if tail.endswith("/") else tail
    if provider not in ADAPTERS:
        return error(404, "unknown provider", f"{provider[:64]!r} is not a provider")
    try:
        cls = adapter_class(provider)
    except (UnknownProvider, ImportError, AttributeError):
        return error(404, "unknown provider", f"{provider!r} has no adapter installed")
    if cls.kind != kind:
        return error(404, "unknown route", f"{provider} is a {cls.kind} provider, not {kind}")
    if tail.startswith("webhooks/"):
        family = tail[len("webhooks/"):]
        if family in KIND_FAMILIES.get(kind, frozenset()):
            return provider, family
    if tail == "import" and kind == "seller":
        return provider, "import"
    if tail in cls.extra_routes:
        return provider, cls.extra_routes[tail]
    return error(404, "unknown route", f"no {tail!r} route for {provider}")
