"""UrbanPiper (we are the "POS"): static registered header, callbacks confirming our item/store actions."""
from __future__ import annotations

from ingest.adapters.urbanpiper.adapter import UrbanPiperAdapter

__all__ = ["UrbanPiperAdapter"]
