"""In-house WMS (our proposed contract): Standard Webhooks v1, per-facility sequence."""
from __future__ import annotations

from ingest.adapters.inhouse_wms.adapter import InhouseWmsAdapter

__all__ = ["InhouseWmsAdapter"]
