"""The payload search projection: parsed JSON bodies and the vendor ids they name, one INSERT per batch."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import orjson

from ingest.adapters.base import RawDelivery
from ingest.canonical.mapping import MappingKey
from ingest.db.pool import PG_OUTAGE, outage

log = logging.getLogger(__name__)

#: bodies above this are still searchable by vendor id, not by field (keeps the GIN index small)
DOC_MAX_BYTES = 64 * 1024
#: JSON keys whose scalar values are vendor ids worth an exact-match search (order ids are not mapping keys)
_ID_SUFFIXES = ("id", "_id", "ids", "sku", "_no", "number", "code")
_MAX_IDS = 64


def _id_values(value: Any, out: set[str], key: str = "") -> None:
    if len(out) >= _MAX_IDS:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _id_values(v, out, str(k).lower())
    elif isinstance(value, list):
        for v in value:
            _id_values(v, out, key)
    elif isinstance(value, (str, int)) and not isinstance(value, bool) and key.endswith(_ID_SUFFIXES):
        text = str(value)
        if 0 < len(text) <= 200:
            out.add(text)


def search_row(delivery: RawDelivery, keys: Iterable[MappingKey] = ()) -> dict[str, Any]:
    """The projection of one payload: its JSON body when small, and the ids a support person searches by."""
    doc: Any = None
    ids = {k.external_id for k in keys}
    if len(delivery.body) <= DOC_MAX_BYTES:
        try:
            doc = orjson.loads(delivery.body)
        except orjson.JSONDecodeError:
            doc = None  # CSV/XML/form bodies: searchable by vendor id only
    if doc is not None:
        _id_values(doc, ids)
    return {"raw_id": delivery.raw_id, "received_at": _iso(delivery.received_at), "tenant_id": delivery.tenant_id,
            "provider": delivery.provider, "ext_ids": sorted(ids),
            "doc": doc if isinstance(doc, (dict, list)) else None}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class PostgresSearchIndex:
    """Idempotent (replays and reprocessed batches insert nothing twice)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            await self._insert(rows)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc
        except asyncpg.PostgresError as exc:
            # a body PostgreSQL's jsonb refuses (e.g. \u0000) must not stop the pipeline: keep its ids only
            log.warning("search projection without documents for this batch: %s", exc)
            await self._insert([{**r, "doc": None} for r in rows])

    async def _insert(self, rows: Sequence[dict[str, Any]]) -> None:
        await self.pool.execute(
            "INSERT INTO raw_search (raw_id, received_at, tenant_id, provider, ext_ids, doc) "
            "SELECT raw_id, received_at, tenant_id, provider, ext_ids, doc FROM jsonb_to_recordset($1::jsonb) "
            "AS x(raw_id uuid, received_at timestamptz, tenant_id text, provider text, ext_ids text[], doc jsonb) "
            "ON CONFLICT DO NOTHING", _dumps(list(rows)))


def _dumps(rows: list[dict[str, Any]]) -> str:
    try:
        return orjson.dumps(rows, default=str).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254): the standard library still can
        return json.dumps(rows, default=str)
