"""Replay: re-publish raw payloads from their exact bytes, each marked with a replay id of its own.

Dedupe lets each replay through once; the current adapters and mappings apply. Every replay is audited.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ingest.db import repositories
from ingest.db.pool import create_pool
from ingest.observability import metrics
from ingest.rawlog.publisher import RawPublisher, from_row, read_body
from ingest.rawlog.s3 import S3Store
from ingest.settings import CommonSettings


async def republish(pool: asyncpg.Pool, store: S3Store, publisher: RawPublisher, raw_ids: Sequence[str], *,
                    actor: str, job_id: str | None = None) -> dict[str, Any]:
    rows = await repositories.load_raw(pool, list(raw_ids))
    found = {r.raw_id for r in rows}
    replays = []
    for row in rows:
        body = await read_body(store, row)
        replay_id = str(uuid.uuid4())
        record = from_row(row, body, replay_id=replay_id, inline_max=publisher.inline_max)
        while not publisher.publish(record):
            await asyncio.sleep(0.05)
        replays.append((row.raw_id, replay_id))
    pending = await asyncio.get_running_loop().run_in_executor(None, publisher.flush, 30.0)
    metrics.REPLAYED.inc(len(replays))
    if replays:
        await pool.executemany(
            "INSERT INTO audit_log (actor, action, tenant_id, target, details) "
            "SELECT $1, 'raw.replay', tenant_id, raw_id::text, "
            "jsonb_build_object('replayId', $3::text, 'jobId', $4::text) "
            "FROM raw_payloads WHERE raw_id = $2::uuid LIMIT 1",
            [(actor, raw_id, replay_id, job_id) for raw_id, replay_id in replays])
    return {"replayed": len(replays), "replays": [{"rawId": r, "replayId": p} for r, p in replays],
            "missing": [r for r in raw_ids if r not in found], "undelivered": pending}


async def replay_ids(settings: CommonSettings, raw_ids: Sequence[str], *, actor: str) -> dict[str, Any]:
    pool = await create_pool(settings.dsn, max_size=2)
    store = S3Store(settings)
    publisher = RawPublisher(settings, client_id="pos-ingest-replay")
    try:
        valid = []
        for r in raw_ids:
            try:
                valid.append(str(uuid.UUID(r)))
            except ValueError:
                continue
        result = await republish(pool, store, publisher, valid, actor=actor)
        result["missing"] = [r for r in raw_ids if r not in {x["rawId"] for x in result["replays"]}]
        return result
    finally:
        publisher.close()
        await pool.close()
        store.close()


def failure_filter_sql(*, cls: str | None, provider: str | None, tenant: str | None, since: datetime | None,
                       until: datetime | None, reason: str | None = None, unresolved_only: bool = True
                       ) -> tuple[str, list[Any]]:
    """The distinct raw ids behind the failures a filter matches (every page, not just one)."""
    where, params = ["raw_id IS NOT NULL"], []
    for column, value in (("class", cls), ("provider", provider), ("tenant_id", tenant), ("reason_code", reason)):
        if value:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    if since:
        params.append(since)
        where.append(f"occurred_at >= ${len(params)}")
    if until:
        params.append(until)
        where.append(f"occurred_at < ${len(params)}")
    if unresolved_only:
        where.append("resolved_at IS NULL")
    return f"SELECT DISTINCT raw_id::text AS raw_id FROM failures WHERE {' AND '.join(where)}", params


async def replay_filter(settings: CommonSettings, *, cls: str | None, provider: str | None, tenant: str | None,
                        since: datetime | None, until: datetime | None, unresolved_only: bool = True,
                        actor: str) -> dict[str, Any]:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        sql, params = failure_filter_sql(cls=cls, provider=provider, tenant=tenant, since=since, until=until,
                                         unresolved_only=unresolved_only)
        raw_ids = [r["raw_id"] for r in await pool.fetch(sql, *params)]
    finally:
        await pool.close()
    return await replay_ids(settings, raw_ids, actor=actor)
