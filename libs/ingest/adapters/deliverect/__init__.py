"""Deliverect Channel API (we are the channel): HMAC-SHA256 hex over the body, full-payload pushes."""
from __future__ import annotations

from ingest.adapters.deliverect.adapter import DeliverectAdapter

__all__ = ["DeliverectAdapter"]
