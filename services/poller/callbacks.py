"""Deliverect async menus: report ONLINE/FAILED to the push's callback URL once its outcome is known.

Two loops over one table (``vendor_callbacks``, an outbox):

- the recorder consumes ``integration.outcomes`` and ``integration.failures`` (group of its own,
  read_committed), keeps Deliverect payloads whose parsed source has a ``callback_url``, and writes one row per
  rawId — ONLINE for a processed outcome, FAILED for a failure of any class but ``duplicate`` — before it
  commits the offsets;
- the sender claims due rows, POSTs ``{"status", "comment"}`` to allowed hosts only, retries 5xx, 429 and
  timeouts with backoff, and records the end: reported, rejected (a final 4xx), refused (host not allowed,
  never contacted) or expired (the vendor's 30-minute window closed first).

A failure naming one command (the validator's) may be followed by the payload's other commands, so its FAILED
waits ``DELIVERECT_CALLBACK_GRACE_S``; a processed outcome arriving meanwhile turns it into ONLINE.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from confluent_kafka import Message

from ingest import topics
from ingest.adapters.base import Headers, RawDelivery
from ingest.avro import codec
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE
from ingest.errors import IngestError
from ingest.pipeline import adapter_for
from ingest.rawlog.publisher import read_body
from services.poller.clients import RETRY_STATUSES
from services.poller.handler import retry_delay
from services.poller.notifications import PollerConsumer

if TYPE_CHECKING:
    from services.poller.app import Poller

log = logging.getLogger(__name__)
PROVIDER = "deliverect"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


# ---- pure ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    raw_id: str
    result: str  # ONLINE | FAILED
    comment: str
    wait: bool = False  # a per-command failure: the payload's other commands may still be written


#: Deliverect event types that can carry an async ``callback`` (the adapter's classification of menu pushes)
MENU_EVENTS = frozenset({"menu_update"})


def verdict_of(schema: str, record: dict[str, Any]) -> Verdict | None:
    """What one outcome or failure record says about its payload, if it says anything final."""
    raw_id = record.get("rawId")
    if not raw_id or record.get("provider") != PROVIDER:
        return None
    if schema == "PayloadOutcome" and record.get("outcome") == "processed":
        if record.get("eventType") not in MENU_EVENTS:
            return None  # only menu pushes carry a callback: no S3 read for snoozes, busy modes, orders
        n = len(record.get("commandIds") or []) + len(record.get("duplicateCommandIds") or [])
        return Verdict(raw_id, "ONLINE", f"{n} commands")
    if schema == "FailureRecord" and record.get("class") != "duplicate":
        return Verdict(raw_id, "FAILED", f"{record.get('class')}: {record.get('message') or ''}"[:1000],
                       wait=record.get("commandId") is not None)
    return None


def merge(verdicts: Iterable[Verdict]) -> dict[str, Verdict]:
    """Per rawId: processed beats failed; a whole-payload failure beats a per-command one; else the first."""
    def rank(v: Verdict) -> int:
        return 2 if v.result == "ONLINE" else (0 if v.wait else 1)

    out: dict[str, Verdict] = {}
    for v in verdicts:
        if v.raw_id not in out or rank(v) > rank(out[v.raw_id]):
            out[v.raw_id] = v
    return out


def parse_hosts(text: str) -> tuple[str, ...]:
    return tuple(h.strip().lower().rstrip(".") for h in text.split(",") if h.strip())


def host_allowed(url: str, patterns: tuple[str, ...]) -> bool:
    """SSRF guard: https to an allowed host (``*.example.com`` = any subdomain of example.com, not itself);
    plain http only to a loopback host the allowlist names exactly (local tests)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 — raises on a malformed port
    except ValueError:
        return False
    if not host or parts.scheme not in ("https", "http"):
        return False
    exact = host in patterns
    if parts.scheme == "http":
        return exact and _loopback(host)
    return exact or any(p.startswith("*.") and host.endswith(p[1:]) for p in patterns)


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Attempt:
    """What the sender records for one claimed row."""

    raw_id: str
    status: str  # pending | reported | rejected | refused | expired
    posted: bool  # a request was made (attempts + 1)
    error: str | None
    next_at: datetime


def after_post(raw_id: str, http_status: int | None, error: str, attempts: int, retry_after: str | None,
               now: datetime, deadline: datetime, *, base_s: float, max_s: float) -> Attempt:
    """The row's next state after one POST (``http_status`` None: timeout or connection error)."""
    if http_status is not None and 200 <= http_status < 300:
        return Attempt(raw_id, "reported", True, None, now)
    if http_status is not None and http_status not in RETRY_STATUSES:
        return Attempt(raw_id, "rejected", True, error, now)
    nxt = now + timedelta(seconds=retry_delay(attempts, retry_after, now, base_s=base_s, max_s=max_s))
    if nxt >= deadline:
        return Attempt(raw_id, "expired", True, f"{error}; the vendor's window closed before a retry", now)
    return Attempt(raw_id, "pending", True, error, nxt)


# ---- I/O -----------------------------------------------------------------------------------------------------

EXISTING = ("SELECT raw_id::text AS raw_id, tenant_id, provider, url, status, result, deadline_at, "
            "leased_until IS NOT NULL AND leased_until > now() AS leased FROM vendor_callbacks "
            "WHERE raw_id = ANY($1::uuid[])")
# new rows; an unsent, unclaimed FAILED becomes ONLINE when the payload's commands turn up after all
RECORD = (
    "INSERT INTO vendor_callbacks (raw_id, tenant_id, provider, url, result, comment, status, last_error, "
    " next_attempt_at, deadline_at) "
    "SELECT r, t, p, u, res, c, s, e, now() + make_interval(secs => w), d FROM unnest($1::uuid[], $2::text[], "
    " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[], $10::timestamptz[]) "
    " AS x(r, t, p, u, res, c, s, e, w, d) "
    "ON CONFLICT (raw_id) DO UPDATE SET result = EXCLUDED.result, comment = EXCLUDED.comment, "
    " next_attempt_at = now() WHERE vendor_callbacks.status = 'pending' AND vendor_callbacks.result = 'FAILED' "
    " AND EXCLUDED.result = 'ONLINE' AND (vendor_callbacks.leased_until IS NULL "
    " OR vendor_callbacks.leased_until < now())")
CLAIM = (
    "UPDATE vendor_callbacks SET leased_until = now() + make_interval(secs => $1) WHERE raw_id IN ("
    " SELECT raw_id FROM vendor_callbacks WHERE status = 'pending' AND next_attempt_at <= now() "
    " AND (leased_until IS NULL OR leased_until < now()) ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "RETURNING raw_id::text AS raw_id, url, result, comment, attempts, deadline_at")
FINISH = (
    "UPDATE vendor_callbacks v SET status = x.s, attempts = v.attempts + x.n, "
    " last_error = COALESCE(x.e, v.last_error), next_attempt_at = x.nxt, leased_until = NULL, "
    " reported_at = CASE WHEN x.s = 'reported' THEN now() ELSE v.reported_at END "
    "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::timestamptz[]) AS x(r, s, n, e, nxt) "
    "WHERE v.raw_id = x.r")


class CallbackRecorder(PollerConsumer):
    """Kafka → table: a row per callback-bearing Deliverect payload whose outcome is known."""

    def __init__(self, poller: Poller, wake: asyncio.Event) -> None:
        super().__init__(poller, group="pos-ingest-poller-callbacks", topic_names=[topics.OUTCOMES, topics.FAILURES])
        self.settings = poller.settings
        self.hosts = parse_hosts(poller.settings.deliverect_callback_hosts)
        self.window = timedelta(seconds=poller.settings.deliverect_callback_window_s)
        self._due = wake

    async def handle(self, messages: list[Message]) -> int:
        """Rows for the batch's final verdicts on callback-bearing payloads (one read, one write)."""
        found: list[Verdict] = []
        for msg in messages:
            if msg.error() or msg.value() is None:
                continue
            headers = {k: (v or b"").decode() for k, v in (msg.headers() or [])}
            if headers.get("provider", PROVIDER) != PROVIDER:
                continue  # most of the traffic: skipped without decoding
            try:
                schema, rec = codec().decode(msg.value())
            except Exception:  # noqa: BLE001 — not ours to judge: the failure recorder handles poison
                continue
            v = verdict_of(schema, rec)
            if v is not None:
                found.append(v)
        verdicts = merge(found)
        if not verdicts:
            return 0
        pool = self.poller.pool
        existing = {r["raw_id"]: r for r in await pool.fetch(EXISTING, list(verdicts))}
        rows: list[tuple[str, str, str, str, datetime]] = []  # raw_id, tenant, provider, url, deadline
        for raw_id, v in verdicts.items():
            old = existing.get(raw_id)
            if old is not None and old["status"] == "pending" and old["result"] == "FAILED" \
                    and v.result == "ONLINE" and not old["leased"]:
                rows.append((raw_id, old["tenant_id"], old["provider"], old["url"], old["deadline_at"]))
        rows.extend(await self._callback_targets([r for r in verdicts if r not in existing]))
        if not rows:
            return 0
        now = datetime.now(timezone.utc)
        cols: list[list[Any]] = [[] for _ in range(10)]
        for raw_id, tenant, provider, url, deadline in rows:
            v = verdicts[raw_id]
            status, error = "pending", None
            if not host_allowed(url, self.hosts):
                status, error = "refused", "callback host is not in DELIVERECT_CALLBACK_HOSTS"
            elif now >= deadline:
                status, error = "expired", "the vendor's window had closed when the outcome was known"
            wait = self.settings.deliverect_callback_grace_s if v.wait else 0.0
            for col, value in zip(cols, (raw_id, tenant, provider, url, v.result, v.comment, status, error, wait,
                                         deadline)):
                col.append(value)
        await pool.execute(RECORD, *cols)
        self._due.set()
        return len(rows)

    async def _callback_targets(self, raw_ids: list[str]) -> list[tuple[str, str, str, str, datetime]]:
        """(raw_id, tenant, provider, callback url, deadline) for the payloads whose parsed source names one."""
        if not raw_ids:
            return []
        rows = await repositories.load_raw(self.poller.pool, raw_ids)
        bodies = await asyncio.gather(*(read_body(self.poller.store, r) for r in rows))
        adapter = adapter_for(PROVIDER)
        out = []
        for row, body in zip(rows, bodies):
            delivery = RawDelivery(body=body, headers=Headers(row.headers), raw_id=row.raw_id,
                                   tenant_id=row.tenant_id, provider=row.provider, family=row.family,
                                   received_at=row.received_at, route=row.route, content_type=row.content_type)
            try:
                url = getattr(adapter.parse(delivery), "callback_url", None)
            except IngestError:
                continue  # unparseable or unsupported: no menu, so no callback owed
            if url:
                out.append((row.raw_id, row.tenant_id, row.provider, url, row.received_at + self.window))
        return out


class CallbackSender:
    """Table → vendor: claims due rows, posts them, records each end."""

    def __init__(self, poller: Poller, wake: asyncio.Event) -> None:
        self.poller = poller
        self.settings = poller.settings
        self.hosts = parse_hosts(poller.settings.deliverect_callback_hosts)
        self._due = wake

    async def send_due(self, limit: int = 50) -> int:
        s = self.settings
        lease = 2 * s.deliverect_callback_timeout_s + 5
        claimed = await self.poller.pool.fetch(CLAIM, lease, limit)
        if not claimed:
            return 0
        done = await asyncio.gather(*(self._post(r) for r in claimed))
        await self.poller.pool.execute(FINISH, [a.raw_id for a in done], [a.status for a in done],
                                       [int(a.posted) for a in done], [a.error for a in done],
                                       [a.next_at for a in done])
        for a in done:
            if a.status != "pending":
                log.info("deliverect callback %s: %s", a.raw_id, a.status,
                         extra={"rawId": a.raw_id, "error": a.error})
        return len(done)

    async def _post(self, row: Any) -> Attempt:
        s = self.settings
        now = datetime.now(timezone.utc)
        raw_id, url, deadline = row["raw_id"], row["url"], row["deadline_at"]
        if not host_allowed(url, self.hosts):  # the allowlist may have shrunk since the row was written
            return Attempt(raw_id, "refused", False, "callback host is not in DELIVERECT_CALLBACK_HOSTS", now)
        remaining = (deadline - now).total_seconds()
        if remaining <= 0:
            return Attempt(raw_id, "expired", False, None, now)
        status: int | None = None
        retry_after: str | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=min(s.deliverect_callback_timeout_s, remaining))
            # no redirects: a 3xx must not carry us to a host the allowlist never saw
            async with self.poller.session.post(url, json={"status": row["result"], "comment": row["comment"]},
                                                timeout=timeout, allow_redirects=False) as resp:
                text = (await resp.read())[:200].decode(errors="replace")
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                error = f"HTTP {status}: {text}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return after_post(raw_id, status, error, row["attempts"], retry_after, datetime.now(timezone.utc),
                          deadline, base_s=s.poller_backoff_base_s, max_s=s.poller_backoff_max_s)

    async def send(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._due.clear()  # before the claim: a row recorded during it wakes the next round
            try:
                if await self.send_due():
                    continue  # maybe more are due
            except PG_OUTAGE:
                log.warning("database unavailable; callbacks wait")
            try:
                await asyncio.wait_for(self._due.wait(), self.settings.poller_tick_s)
            except asyncio.TimeoutError:
                pass



async def run_callbacks(poller: Poller, stop: asyncio.Event) -> None:
    """Both loops until ``stop``; the recorder wakes the sender when it writes rows."""
    wake = asyncio.Event()
    try:
        await asyncio.gather(CallbackRecorder(poller, wake).run(stop), CallbackSender(poller, wake).send(stop))
    except BaseException:
        stop.set()  # the poller exits and is restarted, rather than run on without its callbacks
        raise
