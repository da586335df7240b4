"""INFERRED Omuni export rows → absolute stock: store = ``fc_id``, item = ``ean``, one command per row.

A export is a snapshot of the rows it lists; an EAN missing from it is **not** zeroed here (that needs the
previous export, which is state: a job for the import stage, guarded by a max-zeroing ratio).
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from ingest.adapters.base import CommandFactory
from ingest.adapters.omuni.payloads import InferredInventoryRow
from ingest.canonical.commands import CommandBase, UpdateStockLevel
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.units import quantity


def keys(rows: list[InferredInventoryRow]) -> frozenset[MappingKey]:
    return frozenset(k for r in rows for k in (MappingKey("store", r.fc_id), MappingKey("item", r.ean)))


def inventory_export(rows: list[InferredInventoryRow], make: CommandFactory,
                     ctx: MappingContext) -> list[CommandBase]:
    out: list[CommandBase] = []
    for r in rows:
        qty = Decimal(r.available_qty)
        fields = {}
        if r.snapshot_at:
            fields["occurred_at"] = datetime.fromisoformat(r.snapshot_at).astimezone(timezone.utc)
        out.append(make(UpdateStockLevel, store_id=ctx.resolve("store", r.fc_id), item_id=ctx.resolve("item", r.ean),
                        external_item_id=r.ean, mode="absolute", quantity=quantity(qty), unit="each",
                        available=qty > 0, reason="snapshot", **fields))
    return out
