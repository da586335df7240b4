"""Composition root of the command writer (tests reuse ``build``)."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial

import asyncpg
from confluent_kafka import KafkaException

from ingest import topics
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.errors import DependencyUnavailable
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from ingest.ledger import visible_command_ids
from services.command_writer.handler import handle
from services.command_writer.settings import CommandWriterSettings

log = logging.getLogger(__name__)


class PostgresWrittenCommands:
    def __init__(self, pool: asyncpg.Pool, settings: CommandWriterSettings | None = None) -> None:
        self.pool = pool
        self.settings = settings

    async def claim(self, items: list[tuple[str, str, str]], *,
                    reclaimed: set[str] | None = None) -> dict[str, tuple[bool, str]]:
        try:
            return await repositories.claim(self.pool, "written_commands", "command_id", items, reclaimed=reclaimed)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc

    async def published(self, command_ids: list[str]) -> dict[str, set[str]]:
        """Read the public topics back from shortly before these ids were first claimed (rare: re-runs only)."""
        if not command_ids or self.settings is None:
            return {}
        try:
            first = await self.pool.fetchval("SELECT min(created_at) FROM written_commands "
                                             "WHERE command_id = ANY($1::uuid[])", command_ids)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc
        settings = self.settings
        try:
            visible = await asyncio.get_running_loop().run_in_executor(
                None, lambda: visible_command_ids(settings, set(command_ids), since=first - timedelta(seconds=5)))
        except (TimeoutError, KafkaException) as exc:
            # the broker is what we cannot read: block and retry, never guess
            raise DependencyUnavailable(f"cannot read the public topics back: {exc}") from exc
        log.warning("re-run of %d claimed commands: %s already visible", len(command_ids),
                    {t: len(ids) for t, ids in visible.items() if ids})
        return visible


async def build(settings: CommandWriterSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    return stage_with_resources("command-writer", topics.VALIDATED, "Validated",
                                partial(handle, written=PostgresWrittenCommands(pool, settings)), pool=pool)


async def main() -> None:
    settings = CommandWriterSettings()
    await serve_stage(await build(settings), settings)
