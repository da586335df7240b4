"""Typed bodies of the in-house WMS contract (providers-erp-and-feeds.md §4)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Envelope(_Body):
    spec_version: str = "1.0"
    event_id: str
    event_type: str
    source: str | None = None
    tenant_id: str
    facility_id: str
    occurred_at: datetime
    produced_at: datetime | None = None
    sequence: int | None = None
    data: dict[str, Any]


class NetContent(_Body):
    value: str
    unit: str


class ItemUpserted(_Body):
    sku: str
    parent_sku: str | None = None
    name: str
    brand: str | None = None
    gtins: list[str] = Field(default_factory=list)
    hsn_code: str | None = None
    uom: str | None = None
    net_content: NetContent | None = None
    mrp_minor: int | None = None
    selling_price_minor: int | None = None
    currency: str | None = None
    images: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    category: str | None = None


class SnapshotItem(_Body):
    sku: str
    uom: str | None = None
    on_hand: str | None = None
    reserved: str | None = None
    available: str
    damaged: str | None = None
    in_transit_in: str | None = None


class StockSnapshot(_Body):
    snapshot_id: str
    as_of: datetime | None = None
    mode: str = "partial"  # anything but "full" never zeroes
    page: int = Field(default=1, ge=1)
    page_count: int = Field(default=1, ge=1)
    items: list[SnapshotItem]

    @model_validator(mode="after")
    def _page_within_count(self) -> StockSnapshot:
        if self.page > self.page_count:
            raise ValueError(f"page {self.page} is beyond page_count {self.page_count}")
        return self


class StockAdjusted(_Body):
    adjustment_id: str
    sku: str
    uom: str | None = None
    quantity_delta: str | None = None
    quantity_after: str | None = None
    reason_code: str | None = None


class GrnLine(_Body):
    sku: str
    uom: str | None = None
    qty_accepted: str


class GrnReceived(_Body):
    grn_id: str
    lines: list[GrnLine]


class ReturnLine(_Body):
    sku: str
    uom: str | None = None
    quantity: str
    restocked: bool = False


class ReturnReceived(_Body):
    return_id: str
    lines: list[ReturnLine]


class TransferLine(_Body):
    sku: str
    uom: str | None = None
    quantity: str | None = None
    quantity_shipped: str | None = None
    quantity_received: str | None = None
    quantity_damaged: str | None = None


class Transfer(_Body):
    transfer_id: str
    from_facility_id: str
    to_facility_id: str
    lines: list[TransferLine]


class ShortageLine(_Body):
    sku: str
    uom: str | None = None
    stock_corrected_to: str | None = None
    qty_short: str | None = None


class PickShortage(_Body):
    order_id: str
    lines: list[ShortageLine]


class FacilityStatus(_Body):
    status: str
    reason_code: str | None = None
    effective_from: datetime | None = None
    expected_reopen_at: datetime | None = None


#: event type → model of ``data``
DATA_MODELS: dict[str, type[_Body]] = {
    "item.upserted": ItemUpserted,
    "stock.snapshot": StockSnapshot,
    "stock.adjusted": StockAdjusted,
    "grn.received": GrnReceived,
    "return.received": ReturnReceived,
    "transfer.dispatched": Transfer,
    "transfer.received": Transfer,
    "pick.shortage": PickShortage,
    "facility.status_changed": FacilityStatus,
}
