"""Composition root of the mapping resolver (tests reuse ``build``)."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar

import asyncpg

from ingest import topics
from ingest.canonical.mapping import TenantSettings
from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool, outage
from ingest.kafka.stage import StageSpec, serve_stage, stage_with_resources
from ingest.pipeline import options_json
from ingest.rawlog.s3 import S3Store
from ingest.rawsearch import PostgresSearchIndex
from services.mapper.handler import Sequence, Wanted, handle
from services.mapper.settings import MapperSettings
from services.mapper.snapshots import (RATIO_OPTION, Facility, FacilityState, SnapshotKey, SnapshotProgress,
                                       StockState, max_zero_ratio)


K = TypeVar("K")
V = TypeVar("V")


class BatchTtlCache(Generic[K, V]):
    """Entries loaded a batch of keys at a time and kept ``ttl_s``: a change applies within that."""

    def __init__(self, ttl_s: float, load: Callable[[set[K]], Awaitable[dict[K, V]]]) -> None:
        self._entries: dict[K, tuple[float, V]] = {}
        self._ttl, self._load = ttl_s, load

    async def get(self, keys: set[K]) -> dict[K, V]:
        now = time.monotonic()
        stale = {k for k in keys if k not in self._entries or now - self._entries[k][0] > self._ttl}
        if stale:
            try:
                fresh = await self._load(stale)
            except PG_OUTAGE as exc:
                raise outage(exc) from exc
            for k, v in fresh.items():
                self._entries[k] = (now, v)
        return {k: self._entries[k][1] for k in keys if k in self._entries}


class PostgresMappingRepository:
    """Mappings are read fresh for every batch (one query), so a fix applies to the very next payload; tenant
    settings and source options are cached for ``tenant_cache_s``."""

    def __init__(self, pool: asyncpg.Pool, tenant_cache_s: float = 5.0) -> None:
        self.pool = pool
        self._tenants = BatchTtlCache(tenant_cache_s, partial(repositories.tenant_settings, pool))
        self._options = BatchTtlCache(tenant_cache_s, self._load_options)

    async def tenants(self, tenant_ids: set[str]) -> dict[str, TenantSettings]:
        return await self._tenants.get(tenant_ids)

    async def source_options(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return await self._options.get(pairs)

    async def _load_options(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        fresh = await repositories.source_options(self.pool, pairs)
        return {k: options_json(fresh.get(k)) for k in pairs}  # a pair without a source: no options

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


class PostgresStockRepository:
    """Facility SKU sets and full-snapshot progress: one read per batch with a full snapshot page, one write per
    batch with stock events."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def stock_state(self, snapshots: list[SnapshotKey]) -> StockState:
        t, p, f, sid = (list(c) for c in zip(*snapshots))
        try:
            rows = await self.pool.fetch(
                "SELECT w.t, w.p, w.f, w.sid, s.as_of, s.page_count, s.pages, s.listed, s.completed_by, s.verdict, "
                "s.zeroed, s.would_zero, s.known, "
                "ARRAY(SELECT k.sku FROM facility_skus k WHERE k.tenant_id = w.t AND k.provider = w.p "
                "AND k.facility = w.f) AS skus, "
                "(SELECT max(c.as_of) FROM stock_snapshots c WHERE c.tenant_id = w.t AND c.provider = w.p "
                "AND c.facility = w.f AND c.completed_by IS NOT NULL) AS newest, "
                "(SELECT o.options ->> $5 FROM sources o WHERE o.tenant_id = w.t AND o.provider = w.p) AS ratio "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS w(t, p, f, sid) "
                "LEFT JOIN stock_snapshots s ON s.tenant_id = w.t AND s.provider = w.p AND s.facility = w.f "
                "AND s.snapshot_id = w.sid", t, p, f, sid, RATIO_OPTION)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc
        state = StockState()
        for r in rows:
            fac = (r["t"], r["p"], r["f"])
            ratio = max_zero_ratio({} if r["ratio"] is None else {RATIO_OPTION: r["ratio"]})
            state.facilities[fac] = FacilityState(set(r["skus"]), r["newest"], ratio)
            if r["as_of"] is not None:
                state.snapshots[(*fac, r["sid"])] = SnapshotProgress(
                    r["as_of"], r["page_count"], frozenset(r["pages"]), frozenset(r["listed"]), r["completed_by"],
                    r["verdict"], tuple(r["zeroed"]), r["would_zero"], r["known"])
        return state

    async def save_stock(self, seen: dict[Facility, set[str]],
                         snapshots: dict[SnapshotKey, SnapshotProgress]) -> None:
        skus = [(*fac, sku) for fac, names in seen.items() for sku in sorted(names)]
        if not skus and not snapshots:
            return
        t, p, f, k = (list(c) for c in zip(*skus)) if skus else ([], [], [], [])
        progress = [{"tenant_id": key[0], "provider": key[1], "facility": key[2], "snapshot_id": key[3],
                     "as_of": s.as_of.isoformat(), "page_count": s.page_count, "pages": sorted(s.pages),
                     "listed": sorted(s.listed), "completed_by": s.completed_by, "verdict": s.verdict,
                     "zeroed": list(s.zeroed), "would_zero": s.would_zero, "known": s.known}
                    for key, s in snapshots.items()]
        # a completion is never overwritten; before it, pages and listed SKUs only grow
        try:
            await self.pool.execute(
                "WITH seen AS (INSERT INTO facility_skus (tenant_id, provider, facility, sku) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING) "
                "INSERT INTO stock_snapshots AS s (tenant_id, provider, facility, snapshot_id, as_of, page_count, "
                "pages, listed, completed_by, verdict, zeroed, would_zero, known) "
                "SELECT * FROM jsonb_to_recordset($5::jsonb) AS x(tenant_id text, provider text, facility text, "
                "snapshot_id text, as_of timestamptz, page_count int, pages int[], listed text[], completed_by text, "
                "verdict text, zeroed text[], would_zero int, known int) "
                "ON CONFLICT (tenant_id, provider, facility, snapshot_id) DO UPDATE SET "
                "pages = ARRAY(SELECT DISTINCT n FROM unnest(s.pages || EXCLUDED.pages) AS n ORDER BY n), "
                "listed = CASE WHEN COALESCE(s.completed_by, EXCLUDED.completed_by) IS NOT NULL THEN '{}' "
                "ELSE ARRAY(SELECT DISTINCT x FROM unnest(s.listed || EXCLUDED.listed) AS x ORDER BY x) END, "
                "completed_by = COALESCE(s.completed_by, EXCLUDED.completed_by), "
                "verdict = CASE WHEN s.completed_by IS NULL THEN EXCLUDED.verdict ELSE s.verdict END, "
                "zeroed = CASE WHEN s.completed_by IS NULL THEN EXCLUDED.zeroed ELSE s.zeroed END, "
                "would_zero = CASE WHEN s.completed_by IS NULL THEN EXCLUDED.would_zero ELSE s.would_zero END, "
                "known = CASE WHEN s.completed_by IS NULL THEN EXCLUDED.known ELSE s.known END, "
                "updated_at = now()", t, p, f, k, json.dumps(progress))
        except PG_OUTAGE as exc:
            raise outage(exc) from exc


async def build(settings: MapperSettings) -> StageSpec:
    pool = await create_pool(settings.dsn, max_size=4)
    store = S3Store(settings)
    repo = PostgresMappingRepository(pool, settings.tenant_cache_s)
    return stage_with_resources("mapper", topics.DEDUPED, "Deduped",
                                partial(handle, repo=repo, bodies=store, index=PostgresSearchIndex(pool),
                                        stock=PostgresStockRepository(pool)),
                                pool=pool, store=store)


async def main() -> None:
    settings = MapperSettings()
    await serve_stage(await build(settings), settings)
