"""Partner Standard API (our format): API key checked by the receiver, five operations, OpenAPI 3.1."""
from __future__ import annotations

from ingest.adapters.standard.adapter import (
    ROUTES,
    StandardAdapter,
    StandardSource,
    route_family,
    store_mappings,
)

__all__ = ["ROUTES", "StandardAdapter", "StandardSource", "route_family", "store_mappings"]
