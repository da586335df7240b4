"""Revel Systems: HMAC-SHA1 hex over the body, event type and ids in headers; menus pulled."""
from __future__ import annotations

from ingest.adapters.revel.adapter import RevelAdapter

__all__ = ["RevelAdapter"]
