"""The ledger: every acknowledged rawId ends in commands, a failure, a duplicate, or a counted skip."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ingest.db.pool import create_pool
from ingest.settings import CommonSettings

LEDGER_SQL = """
WITH acked AS (
    SELECT raw_id, received_at FROM raw_payloads
    WHERE received_at >= $1 AND received_at < $2 AND ($3::text IS NULL OR tenant_id = $3)
),
o AS (SELECT DISTINCT ON (raw_id) raw_id, outcome, cardinality(command_ids) AS n FROM outcomes
      WHERE raw_id IN (SELECT raw_id FROM acked) ORDER BY raw_id, recorded_at),
f AS (SELECT raw_id, bool_or(class = 'duplicate') AS dup, bool_or(class <> 'duplicate') AS failed FROM failures
      WHERE raw_id IN (SELECT raw_id FROM acked) GROUP BY raw_id)
SELECT
  count(*) AS acknowledged,
  count(*) FILTER (WHERE o.outcome = 'processed' AND o.n > 0) AS with_commands,
  count(*) FILTER (WHERE o.outcome = 'processed' AND o.n = 0 AND f.raw_id IS NULL) AS no_op,
  count(*) FILTER (WHERE o.outcome = 'skipped') AS skipped,
  count(*) FILTER (WHERE f.failed) AS failed,
  count(*) FILTER (WHERE f.dup AND NOT f.failed) AS duplicates,
  count(*) FILTER (WHERE o.raw_id IS NULL AND f.raw_id IS NULL AND a.received_at < now() - $4::interval) AS lost,
  count(*) FILTER (WHERE o.raw_id IS NULL AND f.raw_id IS NULL AND a.received_at >= now() - $4::interval)
      AS in_flight,
  (array_agg(a.raw_id::text) FILTER (WHERE o.raw_id IS NULL AND f.raw_id IS NULL
      AND a.received_at < now() - $4::interval))[1:20] AS lost_sample
FROM acked a LEFT JOIN o USING (raw_id) LEFT JOIN f USING (raw_id)
"""


async def check(settings: CommonSettings, *, since: datetime | None = None, until: datetime | None = None,
                tenant: str | None = None, grace: timedelta = timedelta(seconds=60)) -> dict[str, Any]:
    since = since or datetime(1970, 1, 1, tzinfo=timezone.utc)
    until = until or datetime.now(timezone.utc) + timedelta(days=1)
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        row = await pool.fetchrow(LEDGER_SQL, since, until, tenant, grace)
        dup_commands = await pool.fetchval("SELECT count(*) - count(DISTINCT command_id) FROM written_commands")
    finally:
        await pool.close()
    report = dict(row)
    report["lost_sample"] = list(report["lost_sample"] or [])
    report["duplicate_command_ids"] = int(dup_commands)
    report["balanced"] = report["lost"] == 0 and report["in_flight"] == 0
    return report
