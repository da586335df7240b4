"""Composition root of the mapping resolver (tests reuse ``build``)."""
from __future__ import annotations

import time
from functools import partial

import asyncpg

from ingest import topics
from ingest.canonical.mapping import TenantSettings
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from ingest.rawlog.s3 import S3Store
from ingest.rawsearch import PostgresSearchIndex
from services.mapper.handler import Sequence, Wanted, handle
from services.mapper.settings import MapperSettings


class PostgresMappingRepository:
    """Mappings are read fresh for every batch (one query), so a fix applies to the very next payload."""

    def __init__(self, pool: asyncpg.Pool, tenant_cache_s: float = 5.0) -> None:
        self.pool = pool
        self._tenants: dict[str, tuple[float, TenantSettings]] = {}
        self._ttl = tenant_cache_s

    async def tenants(self, tenant_ids: set[str]) -> dict[str, TenantSettings]:
        now = time.monotonic()
        stale = {t for t in tenant_ids if t not in self._tenants or now - self._tenants[t][0] > self._ttl}
        if stale:
            try:
                fresh = await repositories.tenant_settings(self.pool, stale)
            except PG_OUTAGE as exc:
                raise outage(exc) from exc
            for t, s in fresh.items():
                self._tenants[t] = (now, s)
        return {t: self._tenants[t][1] for t in tenant_ids if t in self._tenants}

    async def load(self, wanted: list[Wanted]) -> dict[Wanted, str]:
        try:
            return await repositories.load_mappings(self.pool, wanted)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc

    async def create(self, rows: list[tuple[str, str, str, str, str]], *, auto_created: bool) -> None:
        try:
            await repositories.upsert_mappings(self.pool, rows, auto_created=auto_created, overwrite=False)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


    async def sequences(self, scopes: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Sequence]:
        t, p, sc = (list(c) for c in zip(*scopes))
        try:
            rows = await self.pool.fetch(
                "SELECT s.tenant_id, s.provider, s.scope, s.last_sequence, s.last_origin FROM source_sequences s "
                "JOIN unnest($1::text[], $2::text[], $3::text[]) AS w(t, p, sc) "
                "ON s.tenant_id = w.t AND s.provider = w.p AND s.scope = w.sc", t, p, sc)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc
        return {(r["tenant_id"], r["provider"], r["scope"]): (r["last_sequence"], r["last_origin"]) for r in rows}

    async def save_sequences(self, rows: dict[tuple[str, str, str], Sequence]) -> None:
        keys = list(rows)
        try:
            await self.pool.execute(
                "INSERT INTO source_sequences (tenant_id, provider, scope, last_sequence, last_origin) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) "
                "ON CONFLICT (tenant_id, provider, scope) DO UPDATE SET last_sequence = EXCLUDED.last_sequence, "
                "last_origin = EXCLUDED.last_origin, updated_at = now()",
                [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [rows[k][0] for k in keys],
                [rows[k][1] for k in keys])
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


async def build(settings: MapperSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    store = S3Store(settings)
    repo = PostgresMappingRepository(pool, settings.tenant_cache_s)
    return stage_with_resources("mapper", topics.DEDUPED, "Deduped", partial(handle, repo=repo, bodies=store, index=PostgresSearchIndex(pool)),
                                pool=pool, store=store)


async def main() -> None:
    settings = MapperSettings()
    await serve_stage(await build(settings), settings)
