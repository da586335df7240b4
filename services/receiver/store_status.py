"""Store-status queries (PetPooja ``get_store_status``): vendor store id → canonical store → the views' status."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE
from ingest.errors import DependencyUnavailable
from services.views.store import ViewReader

log = logging.getLogger(__name__)


class StoreStatusLookup:
    """Reads never fail the request: with PostgreSQL or Redis unreadable the last status this process saw for
    the store is answered (``stale``), or None when it saw none."""

    def __init__(self, pool: Any, reader: ViewReader, *, timeout_s: float = 1.0, max_known: int = 100_000) -> None:
        self.pool = pool
        self.reader = reader
        self.timeout_s = timeout_s
        self.max_known = max_known
        self._known: dict[tuple[str, str, str], str] = {}

    async def current(self, tenant: str, provider: str, external_store_id: str) -> tuple[str | None, bool]:
        """(canonical status or None when unknown, stale)."""
        key = (tenant, provider, external_store_id)
        try:
            async with asyncio.timeout(self.timeout_s):
                found = await repositories.load_mappings(self.pool, [(tenant, provider, "store", external_store_id)])
                store_id = found.get((tenant, provider, "store", external_store_id))
                doc = await self.reader.status(tenant, store_id) if store_id else None
        except (DependencyUnavailable, TimeoutError, *PG_OUTAGE) as exc:
            log.warning("store status unreadable, answering the last known: %s", exc,
                        extra={"tenant": tenant, "provider": provider})
            return self._known.get(key), True
        status = doc.get("status") if doc else None
        if status:
            if len(self._known) >= self.max_known and key not in self._known:
                self._known.clear()  # a bound, not an LRU: the map refills from the next reads
            self._known[key] = status
        return status, False

    async def close(self) -> None:
        await self.reader.close()
