"""Retention: monthly partitions of the raw log index (created ahead, dropped when expired), expired metadata
deleted, and an S3 lifecycle rule so segment objects expire with their rows."""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, timezone
from typing import Any

import asyncpg

from ingest.rawlog.s3 import S3Store

log = logging.getLogger(__name__)
PARTITIONED = ("raw_payloads", "raw_search")
#: room on each page for the status update to stay HOT (migration 0009)
PARTITION_OPTIONS = {"raw_payloads": " WITH (fillfactor = 80)"}
RETENTION_LOCK = 74210817
_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<y>\d{4})_(?P<m>\d{2})$")
#: metadata rows (not partitioned) and the column that dates them
METADATA = (("failures", "occurred_at"), ("outcomes", "occurred_at"),
            ("replay_jobs", "finished_at"))


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def plan(today: date, months: int, future: int) -> tuple[date, list[date]]:
    """(cutoff: the first day still kept, the month starts that must have a partition)."""
    first = today.replace(day=1)
    return add_months(first, -months), [add_months(first, n) for n in range(future + 1)]


async def _partitions(c: asyncpg.Connection, table: str) -> dict[date, str]:
    rows = await c.fetch("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                         "WHERE i.inhparent = $1::regclass", table)
    out = {}
    for r in rows:
        m = _NAME.match(r["relname"])
        if m and m["table"] == table:
            out[date(int(m["y"]), int(m["m"]), 1)] = r["relname"]
    return out


async def ensure_partition(c: asyncpg.Connection, table: str, start: date) -> bool:
    """Create the month's partition; rows already in the default partition for that month move into it."""
    if start in await _partitions(c, table):
        return False
    end, name = add_months(start, 1), f"{table}_p{start:%Y_%m}"
    async with c.transaction():
        # inserts into the default partition wait for these few statements, so no row of the month is missed
        await c.execute(f"LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE")
        # (utility statements take no bind parameters; the bounds are dates we computed)
        await c.execute(f"CREATE TEMP TABLE moved ON COMMIT DROP AS WITH d AS (DELETE FROM {table}_default "
                        f"WHERE received_at >= '{start.isoformat()}' AND received_at < '{end.isoformat()}' "
                        f"RETURNING *) SELECT * FROM d")
        await c.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ('{start.isoformat()}') "
                        f"TO ('{end.isoformat()}'){PARTITION_OPTIONS.get(table, '')}")
        await c.execute(f"INSERT INTO {table} SELECT * FROM moved")
    return True


async def apply(pool: asyncpg.Pool, store: S3Store | None, *, months: int, future: int = 2,
                today: date | None = None, lifecycle: bool = True, batch: int = 10000,
                idempotency_hours: float = 24) -> dict[str, Any]:
    cutoff, wanted = plan(today or datetime.now(timezone.utc).date(), months, future)
    report: dict[str, Any] = {"cutoff": cutoff.isoformat(), "created": [], "dropped": [], "deleted": {}}
    async with pool.acquire() as c:
        if not await c.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK):
            report["skipped"] = "another process is applying retention"
            return report
        try:
            for table in PARTITIONED:
                for start in wanted:
                    if await ensure_partition(c, table, start):
                        report["created"].append(f"{table}_p{start:%Y_%m}")
                for start, name in sorted((await _partitions(c, table)).items()):
                    if add_months(start, 1) <= cutoff:
                        await c.execute(f"DROP TABLE {name}")
                        report["dropped"].append(name)
                n = await c.execute(f"DELETE FROM {table}_default WHERE received_at < $1", cutoff)
                report["deleted"][f"{table}_default"] = int(n.split()[-1])
            for table, column in METADATA:
                total = 0
                while True:  # bounded batches: no long lock on tables the pipeline writes
                    n = int((await c.execute(f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "
                                             f"WHERE {column} < $1 LIMIT $2))", cutoff, batch)).split()[-1])
                    total += n
                    if n < batch:
                        break
                report["deleted"][table] = total
            # a Standard API Idempotency-Key only answers replays for a day: older rows are dead weight
            n = await c.execute("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
                                idempotency_hours)
            report["deleted"]["idempotency_keys"] = int(n.split()[-1])
            # full WMS snapshots: abandoned (never completed) and superseded ones; the newest completed snapshot of
            # each facility stays whatever its age (a staler one must still be refused)
            n = await c.execute(
                "DELETE FROM stock_snapshots s WHERE s.updated_at < $1 AND (s.completed_by IS NULL OR EXISTS ("
                "SELECT 1 FROM stock_snapshots n WHERE (n.tenant_id, n.provider, n.facility) = "
                "(s.tenant_id, s.provider, s.facility) AND n.completed_by IS NOT NULL AND n.as_of > s.as_of))", cutoff)
            report["deleted"]["stock_snapshots"] = int(n.split()[-1])
        finally:
            await c.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK)
    if lifecycle and store is not None:
        # segments hold payloads of one hour; a month is at most 31 days, so this never expires a kept payload
        days = months * 31 + 1
        await store.put_lifecycle([
            {"ID": "pos-ingest-raw-retention", "Status": "Enabled", "Filter": {"Prefix": "raw/"},
             "Expiration": {"Days": days}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}])
        report["s3ExpirationDays"] = days
    return report


async def apply_configured(pool: asyncpg.Pool, store: S3Store | None, settings: Any, *,
                           months: int | None = None) -> dict[str, Any]:
    """``apply`` with the support service's settings (the scheduled run, the API and the CLI)."""
    return await apply(pool, store, months=months or settings.retention_months,
                       future=settings.retention_future_months, lifecycle=settings.retention_apply_s3_lifecycle,
                       idempotency_hours=settings.idempotency_retention_h)
