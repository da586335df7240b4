"""Hand-written fakes of our own ports: they implement the real protocols and keep state to assert on."""
from __future__ import annotations

from typing import Any

from ingest.canonical.mapping import TenantSettings
from ingest.pipeline import options_json
from services.mapper.snapshots import (Facility, FacilityState, SnapshotKey, SnapshotProgress, StockState,
                                       max_zero_ratio)


class FakeClaims:
    """In-memory twin of ``repositories.claim``: first claimant wins; same origin counts as ours."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str]] = {}
        self.calls = 0
        #: topic → command ids the public topics already show (what a dead run of the same input left visible)
        self.visible: dict[str, set[str]] = {}

    async def claim(self, items: list[tuple[str, str, str]], *,
                    reclaimed: set[str] | None = None) -> dict[str, tuple[bool, str]]:
        self.calls += 1
        out = {}
        for key, raw_id, origin in items:
            if key in out:
                continue  # listed twice: answered for its first occurrence, like repositories.claim
            if key not in self.rows:
                self.rows[key] = (raw_id, origin)
                out[key] = (True, raw_id)
            else:
                first_raw, first_origin = self.rows[key]
                out[key] = (first_origin == origin, first_raw)
                if reclaimed is not None and first_origin == origin:
                    reclaimed.add(key)
        return out

    async def published(self, command_ids: list[str]) -> dict[str, set[str]]:
        return {topic: ids & set(command_ids) for topic, ids in self.visible.items()}


class FakeMappings:
    def __init__(self, tenants: dict[str, TenantSettings] | None = None,
                 rows: dict[tuple[str, str, str, str], str] | None = None) -> None:
        self._tenants = tenants or {}
        self.options: dict[tuple[str, str], dict[str, Any]] = {}
        self.rows = dict(rows or {})
        self.loads = 0
        self.last: dict[tuple[str, str, str], tuple[int, str]] = {}

    async def tenants(self, tenant_ids: set[str]) -> dict[str, TenantSettings]:
        return {t: s for t, s in self._tenants.items() if t in tenant_ids}

    async def source_options(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {k: options_json(self.options.get(k)) for k in pairs}

    async def load(self, wanted: list[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], str]:
        self.loads += 1
        return {w: self.rows[w] for w in wanted if w in self.rows}

    async def create(self, rows: list[tuple[str, str, str, str, str]], *, auto_created: bool) -> None:
        for t, p, e, x, c in rows:
            self.rows.setdefault((t, p, e, x), c)

    async def sequences(self, scopes: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[int, str]]:
        return {s: self.last[s] for s in scopes if s in self.last}

    async def save_sequences(self, rows: dict[tuple[str, str, str], tuple[int, str]]) -> None:
        self.last.update(rows)


class FakeBodies:
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = objects or {}
        self.reads = 0

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        self.reads += 1
        return self.objects[key][offset:offset + length]


class FakeStock:
    """In-memory twin of ``PostgresStockRepository``: facility SKU sets, snapshot progress, source options."""

    def __init__(self, options: dict[tuple[str, str], dict[str, object]] | None = None) -> None:
        self.skus: dict[Facility, set[str]] = {}
        self.snapshots: dict[SnapshotKey, SnapshotProgress] = {}
        self.options = options or {}
        self.reads = self.writes = 0

    async def stock_state(self, snapshots: list[SnapshotKey]) -> StockState:
        self.reads += 1
        state = StockState()
        for key in snapshots:
            fac = key[:3]
            completed = [s.as_of for k, s in self.snapshots.items() if k[:3] == fac and s.completed_by]
            state.facilities[fac] = FacilityState(set(self.skus.get(fac, ())), max(completed, default=None),
                                                  max_zero_ratio(self.options.get(fac[:2], {})))
            if key in self.snapshots:
                state.snapshots[key] = self.snapshots[key]
        return state

    async def save_stock(self, seen: dict[Facility, set[str]],
                         snapshots: dict[SnapshotKey, SnapshotProgress]) -> None:
        self.writes += 1
        for fac, names in seen.items():
            self.skus.setdefault(fac, set()).update(names)
        for key, progress in snapshots.items():
            before = self.snapshots.get(key)
            self.snapshots[key] = before if before is not None and before.completed_by else progress
