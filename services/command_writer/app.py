"""Composition root of the command writer (tests reuse ``build``)."""
from __future__ import annotations

from functools import partial

import asyncpg

from ingest import topics
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from services.command_writer.handler import handle
from services.command_writer.settings import CommandWriterSettings


class PostgresWrittenCommands:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, items: list[tuple[str, str, str]]) -> dict[str, tuple[bool, str]]:
        try:
            return await repositories.claim(self.pool, "written_commands", "command_id", items)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


async def build(settings: CommandWriterSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    return stage_with_resources("command-writer", topics.VALIDATED, "Validated",
                                partial(handle, written=PostgresWrittenCommands(pool)), pool=pool)


async def main() -> None:
    settings = CommandWriterSettings()
    await serve_stage(await build(settings), settings)
