"""Unicommerce (Uniware): channel API calls we host, partner notifications, pulled inventory snapshots."""
from __future__ import annotations

from ingest.adapters.unicommerce.adapter import UnicommerceAdapter

__all__ = ["UnicommerceAdapter"]
