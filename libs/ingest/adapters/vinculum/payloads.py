"""Typed Vin eRetail API responses (Swagger ``erp.vineretail.com/swagger``) as the poller stores them."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$")
_ISO_LOCAL = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?\s*$")


def parse_vinculum_time(text: str | None, tz: str) -> datetime | None:
    """Vinculum's local dates as UTC: ``14/01/2026 10:04 AM``, ``14/01/2026 18:14:22``, ``2017-12-16 12:59:31.0``.
    A 24-hour clock with AM/PM (``16:52 PM``) keeps the hour as written."""
    if not text:
        return None
    m = _DATE.match(text)
    if m:
        day, month, year, hour, minute = (int(m.group(i)) for i in range(1, 6))
        second = int(m.group(6) or 0)
        if m.group(7) and hour <= 12:
            hour = hour % 12 + (12 if m.group(7).lower() == "pm" else 0)
    else:
        iso = _ISO_LOCAL.match(text)
        if iso is None:
            return None
        year, month, day, hour, minute, second = (int(iso.group(i)) for i in range(1, 7))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)
    except ValueError:
        return None


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


class StockRow(_Body):
    """One (sku, location[, bucket]) line of ``v3/sku/inventoryStatus`` or ``v4/stock/getWhInventory``."""

    skuCode: str
    # the Swagger's own inventoryStatus example omits it on a row: the polled ``locCode`` (header
    # ``X-Vinculum-Location`` stored by the poller, else option ``location``)
    location: str | None = None
    qty: str
    committedQty: str | None = None
    bucket: str | None = None


class InventoryStatusPage(_Body):
    inventoryMap: list[dict[str, list[StockRow]]] = Field(default_factory=list)


class InventoryStatus(_Body):
    response: InventoryStatusPage

    def rows(self) -> list[StockRow]:
        return [row for entry in self.response.inventoryMap for rows in entry.values() for row in rows]


class WhInventory(_Body):
    response: list[StockRow] = Field(default_factory=list)
    hasMore: bool | None = None

    def rows(self) -> list[StockRow]:
        return list(self.response)


class Adjustment(_Body):
    id: str
    skuCode: str
    qty: str  # signed change: the sign convention is INFERRED (the vendor example says "XYZ-AB")
    location: str
    bin_bucket: str | None = None
    reason: str | None = None
    createdDate: str | None = None


class AdjustmentDetail(_Body):
    skuList: list[Adjustment] = Field(default_factory=list)


class Sku(_Body):
    skucode: str
    skuName: str
    parentSKU: str | None = None
    desc: str | None = None
    detailDESC: str | None = None
    brand: str | None = None
    size: str | None = None
    color: str | None = None
    mrp: str | None = None
    salePrice: str | None = None
    isActive: str | None = None
    isSaleable: str | None = None
    imageURL: str | None = None
    primaryUPC: str | None = None
    baseUOM: str | None = None
    taxCategory: str | None = None
    categories: list[dict[str, Any]] = Field(default_factory=list)
    attributedetail: list[dict[str, Any]] = Field(default_factory=list)


class SkuPage(_Body):
    skuList: list[Sku] = Field(default_factory=list)


class SkuDetail(_Body):
    response: SkuPage


class AuditDocument(_Body):
    """Receiving, returns and transfers: kept raw for audit; stock follows from the snapshots."""


#: document (the endpoint's name, used as the route family) → model
DOCUMENT_MODELS: dict[str, type[_Body]] = {
    "inventoryStatus": InventoryStatus,
    "getWhInventory": WhInventory,
    "adjustmentDetail": AdjustmentDetail,
    "skuDetail": SkuDetail,
    "inboundDetail": AuditDocument,
    "orderReturn": AuditDocument,
    "stoDetails": AuditDocument,
}


def classify(body: dict[str, Any]) -> str | None:
    """The endpoint a stored response came from, by its shape."""
    response = body.get("response")
    if isinstance(response, dict):
        if "inventoryMap" in response:
            return "inventoryStatus"
        if "inboundList" in response:
            return "inboundDetail"
        if "skuList" in response:
            return "skuDetail"
    if isinstance(response, list):
        if response and isinstance(response[0], dict) and "order" in response[0]:
            return "orderReturn"
        return "getWhInventory"
    if "stoList" in body:
        return "stoDetails"
    if "skuList" in body:
        return "adjustmentDetail"
    return None
