"""Composition root of the feeds stage: the import-registering stage and its feed worker (tests reuse ``build``)."""
from __future__ import annotations

from functools import partial
from typing import Any

import asyncpg

from ingest import feeds, topics
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from ingest.rawlog.s3 import S3Store
from services.feeds.handler import handle
from services.feeds.settings import FeedsSettings
from services.feeds.worker import FeedWorker
from services.mapper.app import PostgresMappingRepository


class PostgresImportQueue:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(self, jobs: list[tuple[dict[str, Any], str, bytes]]) -> None:
        try:
            await feeds.register(self.pool, jobs)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


async def build(settings: FeedsSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    store = S3Store(settings, max_workers=2)
    worker = FeedWorker(settings, pool, store, PostgresMappingRepository(pool, settings.tenant_cache_s))
    spec = stage_with_resources("feeds", topics.IMPORTS, "Deduped",
                                partial(handle, queue=PostgresImportQueue(pool), wake=worker.wake),
                                pool=pool, store=store, on_start=worker.start)
    close_resources = spec.on_stop

    async def on_stop() -> None:
        await worker.stop()  # the worker first: it uses the pool and the store
        if close_resources:
            await close_resources()

    spec.on_stop = on_stop
    return spec


async def main() -> None:
    settings = FeedsSettings()
    await serve_stage(await build(settings), settings)
