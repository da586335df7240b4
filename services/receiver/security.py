"""Receiver security edges: client address behind trusted proxies, allowlists, rate limits, admin token,
request sanity limits, and the throttled auth-failure audit trail."""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import asyncpg
from aiohttp import web

from ingest.db.pool import PG_OUTAGE
from ingest.errors import InvalidSignature
from ingest.kafka.results import Failure, failure_record
from services.receiver.http import error

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: per header (name + value) and in total; aiohttp's parser is configured above these so that an oversized
#: header reaches us and gets the error envelope instead of the parser's plain-text 400
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS_TOTAL_BYTES = 32 * 1024
PARSER_FIELD_LIMIT = 128 * 1024


# --- client address ---------------------------------------------------------------------------
def parse_networks(text: str | Iterable[Any]) -> list[Network]:
    """``"10.0.0.0/8, 127.0.0.1"`` (or asyncpg's cidr values) → networks; bad entries raise ValueError."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t) for t in text]
    return [ipaddress.ip_network(t, strict=False) for t in items if t]


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> Address | None:
    """The client's address: the TCP peer, unless the peer is a trusted proxy, in which case the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy (entries left of it are client-controlled,
    so they are never believed)."""
    address = _address(peer)
    if address is None or not trusted or not _within(address, trusted) or not forwarded_for:
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _address(hop)
        if hop_address is None:
            return address  # a garbled chain: fall back to the proxy itself, which an allowlist will refuse
        if not _within(hop_address, trusted):
            return hop_address
        address = hop_address
    return address


def ip_allowed(address: Address | str | None, allowlist: Sequence[Network]) -> bool:
    """An empty allowlist allows everyone; otherwise the address must fall in one of its networks."""
    if not allowlist:
        return True
    parsed = _address(address) if isinstance(address, str) or address is None else address
    return parsed is not None and _within(parsed, allowlist)


# --- rate limits ------------------------------------------------------------------------------
@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """Token buckets in this process, one per key (a source or an API key): ``rate`` tokens a second, a burst
    of one second's worth. With N receiver replicas the effective limit is N × the configured rate."""

    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _buckets: dict[Any, _Bucket] = field(default_factory=dict)

    def take(self, key: Any, rate: float) -> float:
        """0 when the request may pass; otherwise the seconds until a token is available."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                # full buckets carry no state worth keeping: forget them instead of growing without bound
                self._buckets = {k: b for k, b in self._buckets.items() if b.tokens + (now - b.at) * rate < rate}
            bucket = self._buckets[key] = _Bucket(tokens=max(rate, 1.0), at=now)
        bucket.tokens = min(max(rate, 1.0), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def too_many(wait_s: float, what: str) -> web.Response:
    return error(429, "too many requests", f"rate limit exceeded for this {what}; retry after the "
                                           "Retry-After seconds", headers={"Retry-After": str(max(1, int(wait_s + 0.999)))})


# --- constant-time credential checks ------------------------------------------------------------
def bearer_matches(authorization: str | None, expected: str | None) -> bool:
    """``Authorization: Bearer <token>`` against the expected token, in constant time; no token configured →
    nothing matches."""
    presented = authorization or ""
    token = presented[7:].strip() if presented[:7].lower() == "bearer " else ""
    # compare even when nothing is configured, so the timing is the same either way
    ok = hmac.compare_digest(token.encode(), (expected or "\x00").encode())
    return ok and bool(expected) and bool(token)


# --- request sanity -----------------------------------------------------------------------------
_OPEN_CLOSE = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_BRACKETS = bytes(_OPEN_CLOSE)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _OPEN_CLOSE)


def json_depth(body: bytes) -> int:
    """Maximum nesting of ``[``/``{`` in a JSON text, ignoring brackets inside strings; linear and
    non-recursive, so a hostile body cannot exhaust the stack of the parser that would otherwise measure it."""
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    text = body
    if b'"' in text:
        import re

        text = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", text, flags=re.DOTALL)
    brackets = text.translate(None, _NOT_BRACKETS)
    return max(0, max(accumulate(_OPEN_CLOSE[b] for b in brackets), default=0))


def json_body_problem(body: bytes, max_depth: int) -> str | None:
    """Why a body sent as JSON cannot be JSON (not UTF-8, nested too deeply), or None."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"body is not UTF-8 (byte {exc.start})"
    if body.count(b"[") + body.count(b"{") > max_depth and json_depth(body) > max_depth:
        return f"JSON nested deeper than {max_depth} levels"
    return None


def header_limit_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """431 with the envelope for an oversized header, before any handler reads anything."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        total = 0
        for name, value in request.raw_headers:
            size = len(name) + len(value)
            total += size
            if size > MAX_HEADER_BYTES or total > MAX_HEADERS_TOTAL_BYTES:
                return error(431, "request header fields too large",
                             f"a header may be at most {MAX_HEADER_BYTES} bytes, all headers "
                             f"{MAX_HEADERS_TOTAL_BYTES} bytes")
        return await handler(request)

    return middleware


# --- auth failures: recorded, but a flood cannot overload PostgreSQL -----------------------------
@dataclass(frozen=True)
class AuthFailure:
    actor: str  # what presented the credential: "webhook:<provider>", "apikey", "admin"
    reason: str  # reason code (missing_signature, signature_mismatch, ip_not_allowed, invalid_api_key…)
    tenant_id: str | None
    target: str  # the route
    remote_addr: str | None
    provider: str | None = None


class AuthFailureLog:
    """Auth failures → ``audit_log`` rows, written in one INSERT per flush, at most ``max_per_flush`` rows a
    flush; the rest are counted into one ``auth.failure.suppressed`` row per tenant. The first
    ``max_per_flush`` also go to ``integration.failures`` (class ``auth``) through ``publish``."""

    def __init__(self, pool: asyncpg.Pool, publish: Callable[[dict[str, Any]], None] | None, *,
                 interval_s: float = 1.0, max_per_flush: int = 200) -> None:
        self.pool = pool
        self.publish = publish
        self.interval_s = interval_s
        self.max_per_flush = max_per_flush
        self._rows: list[AuthFailure] = []
        self._suppressed: dict[str | None, int] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, failure: AuthFailure, exc: Exception | None = None) -> None:
        if len(self._rows) >= self.max_per_flush:
            self._suppressed[failure.tenant_id] = self._suppressed.get(failure.tenant_id, 0) + 1
            return
        self._rows.append(failure)
        if self.publish is not None and failure.provider:
            # a webhook's failure also goes to integration.failures (class auth), where support looks first
            err = exc if isinstance(exc, InvalidSignature) else InvalidSignature(
                str(exc) if exc else failure.reason, reason_code=failure.reason)
            self.publish(failure_record(None, Failure(err, details={"route": failure.target,
                                                                     "remoteAddr": failure.remote_addr}),
                                        stage="receiver", index=0, origin=None,
                                        raw={"tenantId": failure.tenant_id, "provider": failure.provider}))

    async def flush(self) -> int:
        rows, suppressed = self._rows, self._suppressed
        self._rows, self._suppressed = [], {}
        items = [(r.actor, "auth.failure", r.tenant_id, r.target, r.remote_addr,
                  json.dumps({"reason": r.reason, "provider": r.provider})) for r in rows]
        items += [("receiver", "auth.failure.suppressed", tenant, None, None, json.dumps({"count": count}))
                  for tenant, count in suppressed.items()]
        if not items:
            return 0
        cols = list(zip(*items))
        try:
            await self.pool.execute(
                "INSERT INTO audit_log (actor, action, tenant_id, target, remote_addr, details) "
                "SELECT a, b, c, d, e, f::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                "$5::text[], $6::text[]) AS r(a, b, c, d, e, f)", *[list(c) for c in cols])
        except PG_OUTAGE as exc:
            # the audit trail is best effort during an outage: the 401s were answered regardless
            log.warning("could not write %d auth-failure audit rows: %s", len(items), exc)
            return 0
        return len(items)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()
