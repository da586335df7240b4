"""Composition root of the failure recorder (tests reuse ``build``)."""
from __future__ import annotations

from functools import partial
from typing import Any

import asyncpg

from ingest import topics
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from services.failure_recorder.handler import handle
from services.failure_recorder.settings import FailureRecorderSettings


class PostgresLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, failures: list[dict[str, Any]], outcomes: list[dict[str, Any]],
                     statuses: list[tuple[str, str, str]]) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await repositories.insert_failures(conn, failures)
                await repositories.insert_outcomes(conn, outcomes)
                await repositories.set_raw_status(conn, statuses)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


async def build(settings: FailureRecorderSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    spec = stage_with_resources("failure-recorder", topics.FAILURES, None,
                                partial(handle, ledger=PostgresLedger(pool)), pool=pool)
    spec.extra["topics"] = [topics.FAILURES, topics.OUTCOMES]
    return spec


async def main() -> None:
    settings = FailureRecorderSettings()
    await serve_stage(await build(settings), settings)
