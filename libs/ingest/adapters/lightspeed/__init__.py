"""Lightspeed Restaurant K-Series: optional Basic auth, availability/readiness/order pushes; menus polled."""
from __future__ import annotations

from ingest.adapters.lightspeed.adapter import LightspeedAdapter

__all__ = ["LightspeedAdapter"]
