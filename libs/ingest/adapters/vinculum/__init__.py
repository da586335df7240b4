"""Vinculum (Vin eRetail): pull only; stored API responses → stock snapshots, ledger deltas, catalog."""
from __future__ import annotations

from ingest.adapters.vinculum.adapter import VinculumAdapter

__all__ = ["VinculumAdapter"]
