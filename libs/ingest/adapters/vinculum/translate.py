"""One pure function per Vin eRetail document: typed response + mapping context → canonical commands.

Stock: snapshots (``inventoryStatus``, ``getWhInventory`` bucket Good) are **absolute**, sellable =
``qty − committedQty`` (INFERRED: Vinculum's channel stock nets open orders; option ``subtract_committed``
turns it off). The ``adjustmentDetail`` ledger gives **deltas** with reason ``adjustment`` (Good bucket
only); a tenant that also polls snapshots sets ``apply_adjustments: false`` so the same movement is not
counted twice. Receiving, returns and transfers are audit only. A SKU is the canonical item.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ingest.adapters.base import CommandFactory
from ingest.adapters.vinculum import payloads as p
from ingest.canonical.commands import CommandBase, UpdatePrice, UpdateStockLevel, UpsertCatalogItem
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor
from ingest.canonical.units import QuantityError, normalize_unit, quantity
from ingest.errors import UnparseablePayload

Translate = Callable[[Any, CommandFactory, MappingContext, dict[str, Any]], list[CommandBase]]
GOOD = "good"


def _good(row: p.StockRow) -> bool:
    return row.bucket is None or row.bucket.lower() == GOOD


def location_of(row: p.StockRow, options: dict[str, Any]) -> str:
    location = row.location or options.get("location")
    if not location:
        raise UnparseablePayload(f"stock row for sku {row.skuCode!r} names no location, and neither the stored "
                                 "X-Vinculum-Location nor the option location names the polled locCode",
                                 reason_code="missing_location")
    return str(location)


def keys(document: str, body: object, options: dict[str, Any]) -> frozenset[MappingKey]:
    out: set[MappingKey] = set()
    if isinstance(body, (p.InventoryStatus, p.WhInventory)):
        for row in body.rows():
            if _good(row):
                out |= {MappingKey("store", location_of(row, options)), MappingKey("item", row.skuCode)}
    elif isinstance(body, p.AdjustmentDetail) and options.get("apply_adjustments", True):
        for adj in body.skuList:
            if (adj.bin_bucket or GOOD).lower() == GOOD:
                out |= {MappingKey("store", adj.location), MappingKey("item", adj.skuCode)}
    elif isinstance(body, p.SkuDetail):
        out.update(MappingKey("item", sku.skucode) for sku in body.response.skuList)
    return frozenset(out)


def _qty(text: str | None, where: str) -> Decimal:
    try:
        return Decimal(quantity(text if text not in (None, "") else "0"))
    except QuantityError as exc:
        raise UnparseablePayload(f"{where}: {exc}", reason_code="invalid_quantity") from exc


def _snapshot(rows: list[p.StockRow], make: CommandFactory, ctx: MappingContext,
              options: dict[str, Any]) -> list[CommandBase]:
    out: list[CommandBase] = []
    for row in rows:
        if not _good(row):
            continue  # Bad / Hold / In process stock is not sellable
        location = location_of(row, options)
        qty = _qty(row.qty, f"{location}/{row.skuCode} qty")
        if options.get("subtract_committed", True):
            qty = max(qty - _qty(row.committedQty, f"{location}/{row.skuCode} committedQty"), Decimal(0))
        out.append(make(UpdateStockLevel, store_id=ctx.resolve("store", location),
                        item_id=ctx.resolve("item", row.skuCode), external_item_id=row.skuCode, mode="absolute",
                        quantity=quantity(qty), unit="each", available=qty > 0, reason="snapshot"))
    return out


def inventory_status(body: p.InventoryStatus, make: CommandFactory, ctx: MappingContext,
                     options: dict[str, Any]) -> list[CommandBase]:
    return _snapshot(body.rows(), make, ctx, options)


def wh_inventory(body: p.WhInventory, make: CommandFactory, ctx: MappingContext,
                 options: dict[str, Any]) -> list[CommandBase]:
    return _snapshot(body.rows(), make, ctx, options)


def adjustment_detail(body: p.AdjustmentDetail, make: CommandFactory, ctx: MappingContext,
                      options: dict[str, Any]) -> list[CommandBase]:
    if not options.get("apply_adjustments", True):
        return []
    out: list[CommandBase] = []
    for adj in body.skuList:
        if (adj.bin_bucket or GOOD).lower() != GOOD:
            continue
        fields: dict[str, Any] = {}
        when = p.parse_vinculum_time(adj.createdDate, str(options.get("timezone", "Asia/Kolkata")))
        if when is not None:
            fields["occurred_at"] = when
        out.append(make(UpdateStockLevel, store_id=ctx.resolve("store", adj.location),
                        item_id=ctx.resolve("item", adj.skuCode), external_item_id=adj.skuCode, mode="delta",
                        quantity=quantity(_qty(adj.qty, f"adjustment {adj.id} qty")), unit="each", available=True,
                        reason="adjustment", **fields))
    return out


def sku_detail(body: p.SkuDetail, make: CommandFactory, ctx: MappingContext,
               options: dict[str, Any]) -> list[CommandBase]:
    currency = options.get("currency")
    out: list[CommandBase] = []
    for sku in body.response.skuList:
        item_id = ctx.resolve("item", sku.skucode)
        attributes = {str(a.get("attribute_name")): str(a.get("attribute_value"))
                      for a in sku.attributedetail if a.get("attribute_name") and a.get("attribute_value")}
        attributes |= {k: v for k, v in (("parentSku", sku.parentSKU), ("size", sku.size), ("color", sku.color),
                                         ("uom", normalize_unit(sku.baseUOM)), ("hsnCode", sku.taxCategory)) if v}
        category = " > ".join(str(v) for v in (sku.categories[0].get(k) for k in ("category", "subCategory",
                                                                                  "productType")) if v) \
            if sku.categories else None
        # the primary imageURL, then skuImg1..6 (which often repeat it)
        extra = [str(v) for k, v in sorted(sku.model_extra.items() if sku.model_extra else [])
                 if k.startswith("skuImg") and v]
        images = list(dict.fromkeys([sku.imageURL, *extra] if sku.imageURL else extra))
        active = (sku.isActive or "true").lower() == "true" and (sku.isSaleable or "true").lower() == "true"
        out.append(make(UpsertCatalogItem, item_id=item_id, external_item_id=sku.skucode, name=sku.skuName,
                        description=sku.detailDESC or sku.desc or None, brand=sku.brand or None,
                        category=category or None, gtin=sku.primaryUPC or None, image_urls=images,
                        attributes=attributes, active=active))
        for price_type, amount in (("base", sku.mrp), ("sale", sku.salePrice)):
            if amount in (None, ""):
                continue
            if not currency:
                raise UnparseablePayload("skuDetail prices carry no currency and the tenant has no "
                                         "default_currency", reason_code="missing_currency")
            try:
                minor = to_minor(amount, currency)
            except MoneyError as exc:
                raise UnparseablePayload(f"sku {sku.skucode}: {exc}", reason_code="invalid_price") from exc
            out.append(make(UpdatePrice, item_id=item_id, external_item_id=sku.skucode, amount_minor=minor,
                            currency=currency, price_type=price_type))
    return out


def audit_document(body: p.AuditDocument, make: CommandFactory, ctx: MappingContext,
                   options: dict[str, Any]) -> list[CommandBase]:
    # receiving, returns and transfers already show in the next snapshot: audit only, no double count
    return []


TRANSLATORS: dict[str, Translate] = {
    "inventoryStatus": inventory_status,
    "getWhInventory": wh_inventory,
    "adjustmentDetail": adjustment_detail,
    "skuDetail": sku_detail,
    "inboundDetail": audit_document,
    "orderReturn": audit_document,
    "stoDetails": audit_document,
}
