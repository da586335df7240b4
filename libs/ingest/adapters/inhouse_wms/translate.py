"""One pure function per in-house WMS event type: payload + mapping context → canonical commands.

Stock semantics (documented in the README): absolute values are preferred (``available`` in snapshots,
``quantity_after`` in adjustments, ``stock_corrected_to`` in shortages); deltas are used only where the
event has no absolute (GRN ``qty_accepted``, restocked returns, transfers), never both for one movement.
A SKU is the canonical *item* for stock and price; ``parent_sku`` is kept as an attribute.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal

from ingest.adapters.base import CommandFactory
from ingest.adapters.inhouse_wms import payloads as p
from ingest.canonical.commands import (
    CommandBase,
    UpdatePrice,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertCatalogItem,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.units import negate, normalize_unit, quantity

Translate = Callable[[p.Envelope, object, CommandFactory, MappingContext], list[CommandBase]]

_STATUS = {"open": "OPEN", "closed": "CLOSED", "paused": "PAUSED", "busy": "BUSY"}


def skus(event_type: str, data: object) -> list[str]:
    """Every SKU the event names (its ``item`` mapping keys)."""
    if isinstance(data, (p.ItemUpserted, p.StockAdjusted)):
        return [data.sku]
    if isinstance(data, p.StockSnapshot):
        return [i.sku for i in data.items]
    if isinstance(data, p.ReturnReceived):
        return [line.sku for line in data.lines if line.restocked]
    if isinstance(data, (p.GrnReceived, p.Transfer, p.PickShortage)):
        return [line.sku for line in data.lines]
    return []


#: events that state stock for SKUs at the envelope's facility (they make up the facility's SKU set)
STOCK_EVENTS = frozenset({"stock.snapshot", "stock.adjusted", "grn.received", "return.received",
                          "transfer.dispatched", "transfer.received", "pick.shortage"})


def keys(env: p.Envelope, data: object) -> frozenset[MappingKey]:
    out = {MappingKey("merchant", env.tenant_id), MappingKey("store", env.facility_id)}
    out.update(MappingKey("item", sku) for sku in skus(env.event_type, data))
    return frozenset(out)


def _stock(make: CommandFactory, ctx: MappingContext, sku: str, uom: str | None, *, mode: str, qty: str,
           reason: str) -> CommandBase:
    canonical = quantity(qty)  # a classified QuantityError before any Decimal arithmetic
    absolute_available = Decimal(canonical) > 0 if mode == "absolute" else True
    return make(UpdateStockLevel, item_id=ctx.resolve("item", sku), external_item_id=sku, mode=mode,
                quantity=canonical, unit=normalize_unit(uom), available=absolute_available, reason=reason)


def item_upserted(env: p.Envelope, data: p.ItemUpserted, make: CommandFactory,
                  ctx: MappingContext) -> list[CommandBase]:
    item_id = ctx.resolve("item", data.sku)
    # attribute values are free-form JSON: null is no value, the rest keeps its JSON spelling
    attributes = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
                  for k, v in sorted(data.attributes.items()) if v is not None}
    if data.parent_sku:
        attributes["parentSku"] = data.parent_sku
    if data.hsn_code:
        attributes["hsnCode"] = data.hsn_code
    if data.uom:
        attributes["uom"] = normalize_unit(data.uom) or data.uom
    if data.net_content:
        attributes["netContent"] = f"{data.net_content.value} {data.net_content.unit}"
    # the catalog item is merchant-wide; its prices are the facility's
    item = make(UpsertCatalogItem, store_id=None, item_id=item_id, external_item_id=data.sku, name=data.name,
                brand=data.brand, category=data.category, gtin=data.gtins[0] if data.gtins else None,
                image_urls=list(data.images), attributes=attributes, active=data.active)
    out: list[CommandBase] = [item]
    if data.currency:
        if data.selling_price_minor is not None:
            out.append(make(UpdatePrice, item_id=item_id, external_item_id=data.sku,
                            amount_minor=data.selling_price_minor, currency=data.currency, price_type="sale"))
        if data.mrp_minor is not None:
            out.append(make(UpdatePrice, item_id=item_id, external_item_id=data.sku,
                            amount_minor=data.mrp_minor, currency=data.currency, price_type="base"))
    return out


def stock_snapshot(env: p.Envelope, data: p.StockSnapshot, make: CommandFactory,
                   ctx: MappingContext) -> list[CommandBase]:
    return [_stock(make, ctx, i.sku, i.uom, mode="absolute", qty=i.available, reason="snapshot")
            for i in data.items]


def zeroed(make: CommandFactory, ctx: MappingContext, skus: Sequence[str]) -> list[CommandBase]:
    """SKUs a completed full snapshot did not list: absolute 0, unavailable (the resolver chose them)."""
    return [_stock(make, ctx, sku, None, mode="absolute", qty="0", reason="snapshot") for sku in skus]


def stock_adjusted(env: p.Envelope, data: p.StockAdjusted, make: CommandFactory,
                   ctx: MappingContext) -> list[CommandBase]:
    # quantity_after is order-independent: prefer it over the delta
    if data.quantity_after is not None:
        return [_stock(make, ctx, data.sku, data.uom, mode="absolute", qty=data.quantity_after,
                       reason="adjustment")]
    if data.quantity_delta is not None:
        return [_stock(make, ctx, data.sku, data.uom, mode="delta", qty=data.quantity_delta,
                       reason="adjustment")]
    return []


def grn_received(env: p.Envelope, data: p.GrnReceived, make: CommandFactory,
                 ctx: MappingContext) -> list[CommandBase]:
    return [_stock(make, ctx, line.sku, line.uom, mode="delta", qty=line.qty_accepted, reason="receiving")
            for line in data.lines if Decimal(quantity(line.qty_accepted)) != 0]


def return_received(env: p.Envelope, data: p.ReturnReceived, make: CommandFactory,
                    ctx: MappingContext) -> list[CommandBase]:
    # only restocked units go back on sale; damaged returns change nothing sellable
    return [_stock(make, ctx, line.sku, line.uom, mode="delta", qty=line.quantity, reason="return")
            for line in data.lines if line.restocked]


def transfer_dispatched(env: p.Envelope, data: p.Transfer, make: CommandFactory,
                        ctx: MappingContext) -> list[CommandBase]:
    return [_stock(make, ctx, line.sku, line.uom, mode="delta",
                   qty=negate(line.quantity_shipped or line.quantity or "0"), reason="transfer_out")
            for line in data.lines]


def transfer_received(env: p.Envelope, data: p.Transfer, make: CommandFactory,
                      ctx: MappingContext) -> list[CommandBase]:
    return [_stock(make, ctx, line.sku, line.uom, mode="delta",
                   qty=line.quantity_received or line.quantity or "0", reason="transfer_in")
            for line in data.lines]


def pick_shortage(env: p.Envelope, data: p.PickShortage, make: CommandFactory,
                  ctx: MappingContext) -> list[CommandBase]:
    out: list[CommandBase] = []
    for line in data.lines:
        if line.stock_corrected_to is not None:
            out.append(_stock(make, ctx, line.sku, line.uom, mode="absolute", qty=line.stock_corrected_to,
                              reason="shortage"))
        elif line.qty_short is not None:
            out.append(_stock(make, ctx, line.sku, line.uom, mode="delta", qty=negate(line.qty_short),
                              reason="shortage"))
    return out


def facility_status(env: p.Envelope, data: p.FacilityStatus, make: CommandFactory,
                    ctx: MappingContext) -> list[CommandBase]:
    status = _STATUS.get(data.status.lower())
    if status is None:
        from ingest.errors import UnparseablePayload

        raise UnparseablePayload(f"unknown facility status {data.status!r}", reason_code="unknown_status")
    return [make(UpdateStoreStatus, external_store_id=env.facility_id, status=status,
                 until=data.expected_reopen_at if status != "OPEN" else None)]


TRANSLATORS: dict[str, Translate] = {
    "item.upserted": item_upserted,  # type: ignore[dict-item]
    "stock.snapshot": stock_snapshot,  # type: ignore[dict-item]
    "stock.adjusted": stock_adjusted,  # type: ignore[dict-item]
    "grn.received": grn_received,  # type: ignore[dict-item]
    "return.received": return_received,  # type: ignore[dict-item]
    "transfer.dispatched": transfer_dispatched,  # type: ignore[dict-item]
    "transfer.received": transfer_received,  # type: ignore[dict-item]
    "pick.shortage": pick_shortage,  # type: ignore[dict-item]
    "facility.status_changed": facility_status,  # type: ignore[dict-item]
}
