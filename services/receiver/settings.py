"""Receiver settings (contract §1: RECEIVER_PORT, TENANT_BASE_DOMAIN, …)."""
from __future__ import annotations

from ingest.settings import ReceiverSettings

__all__ = ["ReceiverSettings"]
