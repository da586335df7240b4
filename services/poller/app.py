"""Composition root of the poller: claims due poll sources, pulls them, and appends every document to the raw log.

Pulled documents take exactly the webhook path: ``RawLogWriter.append`` (segment in S3 + metadata row) then
``RawPublisher.publish_durable`` to ``integration.raw``. The poller marks its own acknowledged publications
(``Sweeper.mark_once``) but does not sweep: the receiver's sweeper scans every unpublished ``raw_payloads`` row,
whoever wrote it, so a document the poller stored but could not publish is republished by it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import asyncpg

from ingest.crypto import SecretBox
from ingest.db.pool import PG_OUTAGE, create_pool
from ingest.errors import DependencyUnavailable, IngestError
from ingest.observability import metrics
from ingest.observability.health import start_health_server
from ingest.rawlog.publisher import RawPublisher, Sweeper
from ingest.rawlog.s3 import S3Store
from ingest.rawlog.writer import PendingRaw, RawLogWriter
from services.poller import handler
from services.poller.auth import TokenStore
from services.poller.clients import PullClient, PullFailed
from services.poller.handler import Fetch, PollSource
from services.poller.settings import PollerSettings

log = logging.getLogger(__name__)

CLAIM_DUE = (
    "UPDATE poll_sources SET leased_until = now() + make_interval(secs => $1) WHERE poll_id IN ("
    " SELECT poll_id FROM poll_sources WHERE enabled AND next_run_at <= now() AND "
    " (leased_until IS NULL OR leased_until < now()) ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "RETURNING *")
CLAIM_ONE = (
    "UPDATE poll_sources SET leased_until = now() + make_interval(secs => $1) WHERE tenant_id = $2 AND provider = $3 "
    "AND (leased_until IS NULL OR leased_until < now()) RETURNING *")
# windows advance only on success; the refetches this run consumed are removed, new ones kept (and run at once)
FINISH = (
    "WITH cur AS (SELECT state FROM poll_sources WHERE poll_id = $1 FOR UPDATE), "
    "left_over AS (SELECT COALESCE(jsonb_agg(x), '[]'::jsonb) AS r FROM cur, "
    " jsonb_array_elements(COALESCE(cur.state->'refetch', '[]'::jsonb)) x WHERE NOT (x #>> '{}' = ANY($2::text[]))) "
    "UPDATE poll_sources p SET leased_until = NULL, last_run_at = now(), last_status = $3, last_error = $4, "
    " consecutive_failures = CASE WHEN $3 = 'ok' THEN 0 ELSE p.consecutive_failures + 1 END, "
    " state = p.state || jsonb_build_object('windows', COALESCE(p.state->'windows', '{}'::jsonb) || $5::jsonb, "
    "  'refetch', left_over.r), "
    " next_run_at = CASE WHEN jsonb_array_length(left_over.r) > 0 THEN now() ELSE $6 END "
    "FROM left_over WHERE p.poll_id = $1")


def source_of(row: asyncpg.Record) -> PollSource:
    def obj(v: Any) -> dict[str, Any]:
        return v if isinstance(v, dict) else json.loads(v or "{}")

    return PollSource(row["poll_id"], row["tenant_id"], row["provider"], row["base_url"], row["auth_kind"],
                      obj(row["options"]), row["interval_s"], obj(row["state"]), row["consecutive_failures"])


@dataclass
class RunResult:
    status: str
    documents: list[str] = field(default_factory=list)  # raw ids, in order
    requests: int = 0
    error: str | None = None


@dataclass
class Poller:
    settings: PollerSettings
    pool: asyncpg.Pool
    store: S3Store
    writer: RawLogWriter
    publisher: RawPublisher
    box: SecretBox
    client: PullClient
    session: aiohttp.ClientSession
    marker: Sweeper  # only its mark_once: published_at for what the broker acknowledged
    _mark_task: asyncio.Task[None] | None = None

    async def credentials(self, src: PollSource) -> dict[str, Any]:
        sealed = await self.pool.fetchval("SELECT credentials_enc FROM poll_sources WHERE poll_id = $1", src.poll_id)
        return json.loads(self.box.open(sealed))  # type: ignore[no-any-return]

    async def pull(self, src: PollSource) -> RunResult:
        """One run: plan, fetch (following pages and lists), append each document; then reschedule."""
        now = datetime.now(timezone.utc)
        result = RunResult("ok")
        windows: dict[str, str] = {}
        refetched: list[str] = []
        try:
            creds = await self.credentials(src)
            p = handler.plan(src, creds, now)
            windows, refetched = p.windows, p.refetched
            queue = list(p.fetches)
            while queue:
                if result.requests >= self.settings.poller_max_pages:
                    raise PullFailed(f"more than {self.settings.poller_max_pages} requests in one run")
                f = queue.pop(0)
                resp = await self.client.fetch(src, creds, f)
                result.requests += 1
                if f.store:
                    result.documents.append(await self._append(src, f, resp.body, resp.content_type))
                queue = handler.follow(src, creds, f, resp.body) + queue
        except (PullFailed, handler.PlanError, IngestError, *PG_OUTAGE) as exc:
            result.status, result.error = "failed", f"{type(exc).__name__}: {str(exc)[:500]}"
            log.warning("pull failed", extra={"tenant": src.tenant_id, "provider": src.provider,
                                              "error": result.error})
        ok = result.status == "ok"
        metrics.POLL_RUNS.labels(src.provider, result.status).inc()
        metrics.POLL_DOCUMENTS.labels(src.provider).inc(len(result.documents))
        nxt = handler.next_run(src, datetime.now(timezone.utc), ok=ok,
                               max_backoff_s=self.settings.poller_failure_backoff_max_s)
        try:
            await self.pool.execute(FINISH, src.poll_id, refetched if ok else [], result.status, result.error,
                                    json.dumps(windows if ok else {}), nxt)
        except PG_OUTAGE:
            # the lease expires on its own and the source is pulled again: the documents are durable already
            log.warning("could not record the run of %s/%s", src.tenant_id, src.provider)
        return result

    async def _append(self, src: PollSource, f: Fetch, body: bytes, content_type: str) -> str:
        # data URLs never carry a credential (those travel in headers or the form body), so support sees them
        headers = {**f.doc_headers, "X-Pull-Url": f.url, "X-Pull-Page": str(f.page)}
        pending = PendingRaw(tenant_id=src.tenant_id, provider=src.provider, kind=handler.PULL_KINDS[src.provider],
                             family=f.family, route=f"pull:{f.endpoint}", content_type=content_type,
                             headers=headers, body=body)
        durable = await self.writer.append(pending)  # raises DependencyUnavailable: the run fails, retried later
        return durable.raw_id

    async def run_due(self) -> int:
        rows = await self.pool.fetch(CLAIM_DUE, self.settings.poller_lease_s, self.settings.poller_concurrency)
        await asyncio.gather(*(self.pull(source_of(r)) for r in rows))
        return len(rows)

    async def run_now(self, tenant: str, provider: str) -> RunResult | None:
        """``pos-ingest poll run``: pull one source immediately (None when unknown or being pulled)."""
        row = await self.pool.fetchrow(CLAIM_ONE, self.settings.poller_lease_s, tenant, provider)
        return await self.pull(source_of(row)) if row else None

    async def schedule_refetch(self, items: list[tuple[str, str, str]]) -> int:
        """Notification-triggered pulls: (tenant, provider, refetch) → appended to the source, due now."""
        if not items:
            return 0
        return len(await self.pool.fetch(
            "UPDATE poll_sources p SET next_run_at = now(), state = jsonb_set(p.state, '{refetch}', "
            " (SELECT COALESCE(jsonb_agg(DISTINCT x), '[]'::jsonb) FROM (SELECT jsonb_array_elements("
            "  COALESCE(p.state->'refetch', '[]'::jsonb)) AS x UNION SELECT to_jsonb(n.refetch)) y)) "
            "FROM unnest($1::text[], $2::text[], $3::text[]) AS n(tenant_id, provider, refetch) "
            "WHERE p.tenant_id = n.tenant_id AND p.provider = n.provider RETURNING p.poll_id",
            [i[0] for i in items], [i[1] for i in items], [i[2] for i in items]))

    async def start(self) -> None:
        try:
            await self.store.ensure_bucket()
        except DependencyUnavailable as exc:
            log.warning("bucket check failed at start: %s", exc.message)
        await self.writer.start()

        async def mark_loop() -> None:
            while True:
                await asyncio.sleep(0.2)
                await self.marker.mark_once()

        self._mark_task = asyncio.create_task(mark_loop(), name="mark-published")

    async def close(self) -> None:
        await self.writer.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.publisher.close)
        if self._mark_task:
            self._mark_task.cancel()
            await asyncio.gather(self._mark_task, return_exceptions=True)
        await self.marker.mark_once()
        await self.session.close()
        await self.pool.close()
        self.store.close()


async def build(settings: PollerSettings) -> Poller:
    pool = await create_pool(settings.dsn, max_size=4)
    store = S3Store(settings)
    publisher = RawPublisher(settings, client_id="pos-ingest-poller")
    writer = RawLogWriter(store, pool, flush_ms=settings.rawlog_flush_ms, max_batch=settings.rawlog_max_batch,
                          max_bytes=settings.rawlog_max_batch_bytes, on_durable=publisher.publish_durable)
    box = SecretBox(settings.secrets_key.get_secret_value() if settings.secrets_key else None)
    session = aiohttp.ClientSession(headers={"User-Agent": "pos-ingest-poller/1"})
    client = PullClient(session, settings, TokenStore(pool, box))
    return Poller(settings, pool, store, writer, publisher, box, client, session, Sweeper(pool, store, publisher))


async def serve(poller: Poller, stop: asyncio.Event) -> None:
    """The schedule loop (and the notification consumer) until ``stop`` is set."""
    from services.poller.notifications import NotificationConsumer

    await poller.start()
    consumer = NotificationConsumer(poller) if poller.settings.poller_notifications else None
    tasks = [asyncio.create_task(consumer.run(stop))] if consumer else []
    if poller.settings.deliverect_callbacks:
        from services.poller.callbacks import run_callbacks

        tasks.append(asyncio.create_task(run_callbacks(poller, stop), name="deliverect-callbacks"))
    try:
        while not stop.is_set():
            try:
                claimed = await poller.run_due()
            except PG_OUTAGE:
                claimed = 0
                log.warning("database unavailable; retrying")
            if not claimed:
                try:
                    await asyncio.wait_for(stop.wait(), poller.settings.poller_tick_s)
                except asyncio.TimeoutError:
                    pass
    finally:
        for t in tasks:
            await t
        await poller.close()


async def main() -> None:
    settings = PollerSettings()
    poller = await build(settings)
    health = await start_health_server(settings.metrics_port) if settings.metrics_port else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(poller, stop)
    finally:
        if health:
            await health.cleanup()


def describe(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``poll list`` rows without credentials."""
    keep = ("tenant_id", "provider", "base_url", "auth_kind", "interval_s", "next_run_at", "last_run_at",
            "last_status", "last_error", "consecutive_failures", "enabled", "options", "state")
    return [{k: r[k] for k in keep} for r in rows]


async def register(pool: asyncpg.Pool, box: SecretBox, *, tenant: str, provider: str, base_url: str,
                   auth_kind: str, credentials: dict[str, Any], interval_s: int,
                   options: dict[str, Any] | None = None) -> int:
    """``pos-ingest poll add``: create or replace a source's schedule; it is due at once. Credentials are
    checked against the auth kind, and the options by planning one run, before anything is stored."""
    from services.poller.auth import check_credentials

    check_credentials(auth_kind, credentials)
    if provider not in handler.PULL_KINDS:
        raise handler.PlanError(f"{provider} has no pull API here; pullable: {', '.join(handler.PULL_KINDS)}")
    handler.plan(PollSource(0, tenant, provider, base_url, auth_kind, options or {}, interval_s), credentials,
                 datetime.now(timezone.utc))
    poll_id = await pool.fetchval(
        "INSERT INTO poll_sources (tenant_id, provider, base_url, auth_kind, credentials_enc, options, interval_s) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (tenant_id, provider) DO UPDATE SET "
        "base_url = EXCLUDED.base_url, auth_kind = EXCLUDED.auth_kind, credentials_enc = EXCLUDED.credentials_enc, "
        "options = EXCLUDED.options, interval_s = EXCLUDED.interval_s, next_run_at = now(), enabled = true, "
        "consecutive_failures = 0 RETURNING poll_id",
        tenant, provider, base_url, auth_kind, box.seal(json.dumps(credentials)), json.dumps(options or {}),
        interval_s)
    # new credentials invalidate whatever token the old ones bought
    await pool.execute("DELETE FROM poll_tokens WHERE poll_id = $1", poll_id)
    return int(poll_id)
