"""Composition root of the dedupe stage (tests reuse ``build``)."""
from __future__ import annotations

import asyncio
from functools import partial

from ingest import topics
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from ingest.rawlog.s3 import S3Store
from services.dedupe.handler import handle
from services.dedupe.settings import DedupeSettings


class PostgresClaimStore:
    def __init__(self, pool: object) -> None:
        self.pool = pool

    async def claim(self, items: list[tuple[str, str, str]]) -> dict[str, tuple[bool, str]]:
        try:
            return await repositories.claim(self.pool, "dedupe_keys", "dedupe_key", items)  # type: ignore[arg-type]
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


async def build(settings: DedupeSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    store = S3Store(settings)

    async def purge_keys_past_ttl() -> None:
        async def loop() -> None:
            while True:
                try:
                    await repositories.purge_dedupe_keys(pool, settings.dedupe_ttl_days)
                except PG_OUTAGE:
                    pass
                await asyncio.sleep(3600)
        asyncio.get_running_loop().create_task(loop())

    return stage_with_resources("dedupe", topics.RAW, "RawReceived",
                                partial(handle, claims=PostgresClaimStore(pool), bodies=store),
                                pool=pool, store=store, on_start=purge_keys_past_ttl)


async def main() -> None:
    settings = DedupeSettings()
    await serve_stage(await build(settings), settings)
