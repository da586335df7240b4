"""The durable raw log against the real S3 server and PostgreSQL: group commit, byte ranges, the sweeper."""
from __future__ import annotations

import asyncio
import hashlib

import pytest

from ingest.db import repositories
from ingest.db.pool import create_pool
from ingest.rawlog.publisher import RawPublisher, Sweeper, read_body
from ingest.rawlog.s3 import S3Store
from ingest.rawlog.writer import PendingRaw, RawLogWriter
from ingest.settings import ReceiverSettings
from tests.stack import consume

pytestmark = pytest.mark.integration


def _pending(n: int, tenant: str = "rawlog") -> PendingRaw:
    return PendingRaw(tenant_id=tenant, provider="inhouse-wms", kind="erp", family="stock", route="/r",
                      content_type="application/json", headers={"X-N": str(n)},
                      body=f'{{"n": {n}, "pad": "{"x" * (n % 7)}"}}'.encode())


async def test_group_commit_shares_puts_and_byte_ranges_return_exact_bodies(settings_env: dict) -> None:  # type: ignore[type-arg]
    settings = ReceiverSettings()
    store = S3Store(settings)
    await store.ensure_bucket()
    pool = await create_pool(settings.dsn)
    writer = RawLogWriter(store, pool, flush_ms=20, max_batch=100)
    await writer.start()
    try:
        pendings = [_pending(i) for i in range(60)]
        durable = await asyncio.gather(*(writer.append(p) for p in pendings))
        assert store.puts <= 3, f"{store.puts} PUTs for 60 payloads: not group-committed"
        rows = {r.raw_id: r for r in await repositories.load_raw(pool, [d.raw_id for d in durable])}
        assert len(rows) == 60
        for p, d in zip(pendings, durable):
            row = rows[p.raw_id]
            assert row.sha256 == hashlib.sha256(p.body).hexdigest()
            assert await read_body(store, row) == p.body
            assert row.headers == {"X-N": p.headers["X-N"]}
    finally:
        await writer.stop()
        await pool.close()
        store.close()


async def test_given_storage_down_when_appending_then_error_and_nothing_recorded(settings_env: dict,  # type: ignore[type-arg]
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.errors import DependencyUnavailable

    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    settings = ReceiverSettings()
    store = S3Store(settings)
    pool = await create_pool(settings.dsn)
    writer = RawLogWriter(store, pool, flush_ms=1)
    await writer.start()
    try:
        pending = _pending(1, tenant="s3down")
        with pytest.raises(DependencyUnavailable):
            await writer.append(pending)
        assert await repositories.load_raw(pool, [pending.raw_id]) == []
    finally:
        await writer.stop()
        await pool.close()
        store.close()


async def test_sweeper_republishes_rows_left_unpublished(settings_env: dict) -> None:  # type: ignore[type-arg]
    from ingest.admin import create_topics

    settings = ReceiverSettings()
    create_topics(settings.kafka_bootstrap_servers, prefix=settings.topic_prefix, partitions=1,
                  replication_factor=1)
    store = S3Store(settings)
    await store.ensure_bucket()
    pool = await create_pool(settings.dsn)
    # durable but never published: what a crash between the INSERT and the produce leaves behind
    writer = RawLogWriter(store, pool, flush_ms=1)
    await writer.start()
    durable = await writer.append(_pending(3, tenant="sweep"))
    await writer.stop()
    publisher = RawPublisher(settings)
    sweeper = Sweeper(pool, store, publisher, grace_s=0)
    try:
        assert await sweeper.sweep_once() >= 1
        await asyncio.get_running_loop().run_in_executor(None, publisher.flush, 10)
        await sweeper.mark_once()
        got = consume(settings.kafka_bootstrap_servers, settings.topic("integration.raw"),
                      until=lambda rs: any(r["rawId"] == durable.raw_id for r in rs), timeout=30)
        record = next(r for r in got if r["rawId"] == durable.raw_id)
        assert record["body"] == durable.pending.body and record["segmentKey"] == durable.segment_key
        row = (await repositories.load_raw(pool, [durable.raw_id]))[0]
        assert row.published_at is not None
        unpublished = await pool.fetchval("SELECT count(*) FROM raw_payloads WHERE raw_id = $1::uuid AND "
                                          "published_at IS NULL", durable.raw_id)
        assert unpublished == 0  # marked: the next sweep leaves it alone
    finally:
        publisher.close()
        await pool.close()
        store.close()


class _GatedStore:
    """The real store, whose PUTs wait for ``gate`` and then succeed, or fail when ``fail`` is set."""

    def __init__(self, store: S3Store) -> None:
        self.store, self.gate, self.fail, self.started = store, asyncio.Event(), False, asyncio.Event()

    async def put(self, key: str, data: bytes) -> None:
        from ingest.errors import DependencyUnavailable

        self.started.set()
        await self.gate.wait()
        if self.fail:
            raise DependencyUnavailable("object storage unavailable: test")
        await self.store.put(key, data)


@pytest.mark.parametrize("put_fails", [False, True])
async def test_rows_commit_only_after_the_segment_put_succeeded(settings_env: dict,  # type: ignore[type-arg]
                                                                put_fails: bool) -> None:
    """The PUT and the INSERT overlap, but no row is visible (and no append answered) before the PUT is done;
    a failed PUT rolls the rows back."""
    from ingest.errors import DependencyUnavailable

    settings = ReceiverSettings()
    store = S3Store(settings)
    await store.ensure_bucket()
    gated = _GatedStore(store)
    gated.fail = put_fails
    pool = await create_pool(settings.dsn)
    writer = RawLogWriter(gated, pool, flush_ms=1)  # type: ignore[arg-type]
    await writer.start()
    try:
        pending = [_pending(i, tenant="gated") for i in range(3)]
        appends = [asyncio.ensure_future(writer.append(p)) for p in pending]
        await asyncio.wait_for(gated.started.wait(), 10)
        await asyncio.sleep(0.3)  # the INSERT has long been sent: it must not be committed yet
        assert not any(a.done() for a in appends)
        assert await repositories.load_raw(pool, [p.raw_id for p in pending]) == []
        gated.gate.set()
        results = await asyncio.gather(*appends, return_exceptions=True)
        rows = await repositories.load_raw(pool, [p.raw_id for p in pending])
        if put_fails:
            assert all(isinstance(r, DependencyUnavailable) for r in results) and rows == []
        else:
            assert [r.raw_id for r in results] == [p.raw_id for p in pending]  # type: ignore[union-attr]
            assert len(rows) == 3
            for row in rows:
                assert await read_body(store, row) == next(p.body for p in pending if p.raw_id == row.raw_id)
    finally:
        await writer.stop()
        await pool.close()
        store.close()
