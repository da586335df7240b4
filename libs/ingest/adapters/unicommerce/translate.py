"""One pure function per Unicommerce route: typed body + mapping context → canonical commands.

Stock rule (no double counting): ``updateInventory`` carries Uniware's recomputed **absolute** channel stock
per (facility, variant) every 2–10 minutes, and that already includes every GRN, return and gatepass.
So GRN completion, gatepass and return notifications are **audit only** (stored raw, classified, no stock
command); adding their quantities too would count the same units twice. The pulled inventory snapshot is an
absolute reconciliation keyed by Uniware's ``itemTypeSKU``.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ingest.adapters.base import CommandFactory
from ingest.adapters.unicommerce import payloads as p
from ingest.canonical.commands import CommandBase, UpdateStockLevel
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.units import QuantityError, quantity
from ingest.errors import UnparseablePayload

Translate = Callable[[object, CommandFactory, MappingContext, str | None], list[CommandBase]]


def facility_of(line: p.InventoryLine, default: str | None) -> str:
    facility = line.facilitycode or default
    if not facility:
        raise UnparseablePayload(f"updateInventory line for variant {line.variantid!r} has no facilityCode and "
                                 "no default facility is configured", reason_code="missing_facility")
    return facility


def keys(route: str, body: object, facility: str | None) -> frozenset[MappingKey]:
    out: set[MappingKey] = set()
    if isinstance(body, p.UpdateInventory):
        for line in body.inventorylist:
            out |= {MappingKey("store", facility_of(line, facility)), MappingKey("item", line.productid),
                    MappingKey("variant", line.variantid)}
    elif isinstance(body, p.InventorySnapshot):
        if facility:
            out.add(MappingKey("store", facility))
        out.update(MappingKey("item", line.itemtypesku) for line in body.inventorysnapshots)
    return frozenset(out)


def _qty(text: str, where: str) -> Decimal:
    try:
        return Decimal(quantity(text))
    except QuantityError as exc:
        raise UnparseablePayload(f"{where}: {exc}", reason_code="invalid_quantity") from exc


def update_inventory(body: p.UpdateInventory, make: CommandFactory, ctx: MappingContext,
                     facility: str | None) -> list[CommandBase]:
    out: list[CommandBase] = []
    for line in body.inventorylist:
        qty = _qty(line.inventory, f"variant {line.variantid}")
        out.append(make(UpdateStockLevel, store_id=ctx.resolve("store", facility_of(line, facility)),
                        item_id=ctx.resolve("item", line.productid), external_item_id=line.productid,
                        variant_id=ctx.resolve("variant", line.variantid), mode="absolute", quantity=qty,
                        unit="each", available=qty > 0, reason="snapshot"))
    return out


def inventory_snapshot(body: p.InventorySnapshot, make: CommandFactory, ctx: MappingContext,
                       facility: str | None) -> list[CommandBase]:
    if not facility:
        raise UnparseablePayload("an inventory snapshot needs the Facility it was pulled for (request header "
                                 "'Facility' stored with the document)", reason_code="missing_facility")
    store_id = ctx.resolve("store", facility)
    out: list[CommandBase] = []
    for line in body.inventorysnapshots:
        # ``inventory`` is Uniware's available count, already net of open sales (verify per tenant)
        qty = _qty(line.inventory, f"sku {line.itemtypesku}")
        out.append(make(UpdateStockLevel, store_id=store_id, item_id=ctx.resolve("item", line.itemtypesku),
                        external_item_id=line.itemtypesku, mode="absolute", quantity=qty, unit="each",
                        available=qty > 0, reason="snapshot"))
    return out


def inflow_receipt_completed(body: p.InflowReceipt, make: CommandFactory, ctx: MappingContext,
                             facility: str | None) -> list[CommandBase]:
    # audit only: the received units arrive as part of the next updateInventory absolute (and the GRN names
    # no facility at all)
    return []


def gatepass_changed(body: p.Gatepass, make: CommandFactory, ctx: MappingContext,
                     facility: str | None) -> list[CommandBase]:
    # audit only: a stock transfer out is already reflected in the source facility's updateInventory
    return []


def return_changed(body: p.Return, make: CommandFactory, ctx: MappingContext,
                   facility: str | None) -> list[CommandBase]:
    # audit only: restocked GOOD_INVENTORY units come back through updateInventory
    return []


TRANSLATORS: dict[str, Translate] = {
    "updateInventory": update_inventory,  # type: ignore[dict-item]
    "inventorySnapshot": inventory_snapshot,  # type: ignore[dict-item]
    "completeInflowReceipt": inflow_receipt_completed,  # type: ignore[dict-item]
    "closeGatepass": gatepass_changed,  # type: ignore[dict-item]
    "awaitedGatepass": gatepass_changed,  # type: ignore[dict-item]
    "discardGatepass": gatepass_changed,  # type: ignore[dict-item]
    "createReturn": return_changed,  # type: ignore[dict-item]
    "allocateReturnCourier": return_changed,  # type: ignore[dict-item]
    "completeReturn": return_changed,  # type: ignore[dict-item]
}
