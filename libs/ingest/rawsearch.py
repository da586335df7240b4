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


_ID_KEYS: dict[str, bool] = {}  # JSON key → whether it names ids (keys repeat across payloads: memoised)
_ID_KEYS_MAX = 4096


def _is_id_key(key: str) -> bool:
    if len(_ID_KEYS) >= _ID_KEYS_MAX:
        _ID_KEYS.clear()
    hit = _ID_KEYS[key] = str(key).lower().endswith(_ID_SUFFIXES)
    return hit


def _id_values(value: Any, out: set[str], is_id: bool = False) -> bool:
    """Add the scalar id values under id-named keys, depth first in document order, until ``out`` holds
    ``_MAX_IDS``; True once it does (the walk stops). A list's items count under the key holding the list.
    ``value`` comes from ``orjson.loads``: exact dict/list/str/int types (a bool is not an id). Hot (every
    payload): the checks are inlined."""
    if len(out) >= _MAX_IDS:
        return True
    known = _ID_KEYS.get
    if type(value) is dict:
        for k, v in value.items():
            t = type(v)
            if t is dict:
                if _id_values(v, out):  # a dict's own keys decide inside it
                    return True
            elif t is list or t is str or t is int:
                hit = known(k)
                if hit is None:
                    hit = _is_id_key(k)
                if t is list:
                    if _id_values(v, out, hit):
                        return True
                elif hit:
                    text = v if t is str else str(v)
                    if 0 < len(text) <= 200:
                        out.add(text)
                        if len(out) >= _MAX_IDS:
                            return True
    elif type(value) is list:
        for v in value:
            t = type(v)
            if t is dict or t is list:
                if _id_values(v, out, is_id):
                    return True
            elif is_id and (t is str or t is int):
                text = v if t is str else str(v)
                if 0 < len(text) <= 200:
                    out.add(text)
                    if len(out) >= _MAX_IDS:
                        return True
    return False


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
