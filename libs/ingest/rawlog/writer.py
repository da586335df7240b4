"""Group-commit writer: payloads arriving within a few milliseconds share one S3 PUT and one INSERT.

``append`` returns only once the exact bytes are in a segment object *and* the metadata row is committed:
that pair is the durable raw log, and only then may the receiver answer 2xx.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import asyncpg
import orjson

from ingest.db.pool import PG_OUTAGE, outage
from ingest.errors import DependencyUnavailable
from ingest.ids import uuid4_str
from ingest.observability import metrics
from ingest.rawlog.s3 import S3Store

log = logging.getLogger(__name__)


@dataclass
class PendingRaw:
    tenant_id: str
    provider: str
    kind: str
    family: str
    route: str
    content_type: str
    headers: dict[str, str]  # already redacted
    body: bytes
    raw_id: str = field(default_factory=uuid4_str)
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class DurableRaw:
    pending: PendingRaw
    segment_key: str
    segment_offset: int
    segment_length: int
    sha256: str

    @property
    def raw_id(self) -> str:
        return self.pending.raw_id


def segment_key(now: datetime) -> str:
    return f"raw/{now:%Y/%m/%d/%H}/{uuid4_str()}.seg"


def build_segment(batch: list[PendingRaw], key: str) -> tuple[bytes, list[DurableRaw]]:
    """Each record: one JSON line (metadata + headers + length), the exact body, a newline.

    The JSON line makes a segment self-describing, so the raw log can be rebuilt from S3 alone.
    """
    buf = bytearray()
    out = []
    for p in batch:
        buf += orjson.dumps({"rawId": p.raw_id, "tenantId": p.tenant_id, "provider": p.provider, "kind": p.kind,
                             "family": p.family, "route": p.route, "contentType": p.content_type,
                             "receivedAt": p.received_at.isoformat(), "headers": p.headers,
                             "length": len(p.body)}) + b"\n"
        offset = len(buf)
        buf += p.body
        buf += b"\n"
        out.append(DurableRaw(p, key, offset, len(p.body), hashlib.sha256(p.body).hexdigest()))
    return bytes(buf), out


INSERT_ROWS = (
    "INSERT INTO raw_payloads (raw_id, received_at, tenant_id, provider, kind, family, route, segment_key, "
    "segment_offset, segment_length, sha256, content_type, headers, size) "
    "SELECT r, t, tn, p, k, f, rt, sk, so, sl, sh, ct, h::jsonb, sz FROM unnest($1::uuid[], $2::timestamptz[], "
    "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], "
    "$11::text[], $12::text[], $13::text[], $14::bigint[]) AS x(r, t, tn, p, k, f, rt, sk, so, sl, sh, ct, h, sz)")


async def insert_rows(conn: asyncpg.Pool | asyncpg.Connection, rows: list[DurableRaw]) -> None:
    cols: list[list[object]] = [[] for _ in range(14)]
    for d in rows:
        p = d.pending
        for i, v in enumerate((p.raw_id, p.received_at, p.tenant_id, p.provider, p.kind, p.family, p.route,
                               d.segment_key, d.segment_offset, d.segment_length, d.sha256, p.content_type,
                               orjson.dumps(p.headers).decode(), len(p.body))):
            cols[i].append(v)
    await conn.execute(INSERT_ROWS, *cols)


class RawLogWriter:
    def __init__(self, store: S3Store, pool: asyncpg.Pool, *, flush_ms: float = 4.0, max_batch: int = 512,
                 max_bytes: int = 8 << 20, max_inflight: int = 4,
                 on_durable: Callable[[list[DurableRaw]], None] | None = None) -> None:
        self._store = store
        self._pool = pool
        self._flush_s = flush_ms / 1000
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._sem = asyncio.Semaphore(max_inflight)
        self._queue: asyncio.Queue[tuple[PendingRaw, asyncio.Future[DurableRaw]] | None] = asyncio.Queue()
        self._on_durable = on_durable
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()  # asyncio's loop lookup is a getpid() syscall: not per payload
        self._task = asyncio.create_task(self._run(), name="rawlog-writer")

    async def stop(self) -> None:
        """Flush what is queued, wait for in-flight flushes, then stop."""
        await self._queue.put(None)
        if self._task:
            await self._task
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def append(self, pending: PendingRaw) -> DurableRaw:
        fut: asyncio.Future[DurableRaw] = (self._loop or asyncio.get_running_loop()).create_future()
        self._queue.put_nowait((pending, fut))  # unbounded: never waits
        # a client hanging up cancels only its own future: the flush that other requests share is a task of
        # its own (and sets only futures that are not done), so no shield is needed
        return await fut

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first[0].body)
            if self._flush_s > 0:
                await asyncio.sleep(self._flush_s)
            while len(batch) < self._max_batch and size < self._max_bytes:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item[0].body)
            await self._sem.acquire()
            task = asyncio.create_task(self._flush(batch))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._sem.release()

    async def _store_both(self, key: str, data: bytes, durable: list[DurableRaw]) -> None:
        """The segment PUT and the rows' INSERT at the same time; the INSERT's transaction commits only after the
        PUT succeeded, so a committed row always points at a stored segment (a failed PUT rolls the rows back;
        a failed INSERT or COMMIT leaves an orphaned segment that nothing points at)."""
        async with self._pool.acquire() as conn:
            put = asyncio.ensure_future(self._store.put(key, data))
            try:
                async with conn.transaction():
                    await insert_rows(conn, durable)
                    await put  # raises → the transaction rolls back
            finally:
                if not put.done():
                    await asyncio.wait([put])
                if not put.cancelled():
                    put.exception()  # retrieved: the INSERT's error is the one that propagates

    async def _flush(self, batch: list[tuple[PendingRaw, asyncio.Future[DurableRaw]]]) -> None:
        started = asyncio.get_running_loop().time()
        key = segment_key(batch[0][0].received_at)
        try:
            data, durable = build_segment([p for p, _ in batch], key)
            try:
                await self._store_both(key, data, durable)
            except PG_OUTAGE as exc:
                raise outage(exc) from exc
        except DependencyUnavailable as exc:
            # the orphaned segment (if the PUT succeeded) holds nothing acknowledged: harmless
            log.warning("raw log flush failed: %s", exc.message)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except Exception as exc:  # noqa: BLE001 — every waiter must hear about it, nothing acknowledged
            log.exception("raw log flush failed unexpectedly")
            wrapped = DependencyUnavailable(f"raw log flush failed: {type(exc).__name__}")
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(wrapped)
            return
        metrics.RAWLOG_BATCH.observe(len(batch))
        metrics.RAWLOG_FLUSH.observe(asyncio.get_running_loop().time() - started)
        for (_, fut), d in zip(batch, durable):
            if not fut.done():
                fut.set_result(d)
        if self._on_durable:
            self._on_durable(durable)
