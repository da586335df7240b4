"""One pure function per UrbanPiper callback: payload + mapping context → canonical commands.

UrbanPiper confirms what we (the "POS") asked of an aggregator, one callback per platform; only the
entries the platform applied become commands. Stores are our ``ref_id``s, items and options our item
``ref_id``s (options are addressed as items, as modifiers are elsewhere). Amounts are major-unit floats
in the tenant's currency (UrbanPiper sends none).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.adapters.base import CommandFactory
from ingest.adapters.urbanpiper import payloads as p
from ingest.canonical.commands import (
    CommandBase,
    UpdateOrderStatus,
    UpdatePrice,
    UpdateStockLevel,
    UpdateStoreStatus,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_decimal, to_minor
from ingest.errors import InvalidCommand, UnparseablePayload

Translate = Callable[[Any, CommandFactory, MappingContext], list[CommandBase]]

#: order states with a canonical meaning (lower-cased); "Placed" and unknown states are acked, ignored
ORDER_STATES: dict[str, str] = {
    "acknowledged": "ACCEPTED", "food ready": "READY", "dispatched": "PICKED_UP", "completed": "COMPLETED",
    "cancelled": "CANCELLED", "customer_cancelled": "CANCELLED",
}


def order_id(external: str) -> str:
    """Orders have no mapping entity: the canonical id is the vendor id, prefixed with the provider."""
    return f"urbanpiper:{external}"


def _availability(make: CommandFactory, ctx: MappingContext, ref_id: str, store: str, enable: bool
                  ) -> CommandBase:
    return make(UpdateStockLevel, store_id=ctx.resolve("store", store), item_id=ctx.resolve("item", ref_id),
                external_item_id=ref_id, mode="absolute", quantity=None, available=enable, reason="snooze")


def item_state_toggle(body: p.ItemStateToggle, make: CommandFactory, ctx: MappingContext
                      ) -> list[CommandBase]:
    return [_availability(make, ctx, item.ref_id, loc.location.ref_id, body.action == "enable")
            for loc in body.status for item in loc.items if item.status == "success"]


def option_state_toggle(body: p.OptionStateToggle, make: CommandFactory, ctx: MappingContext
                        ) -> list[CommandBase]:
    return [_availability(make, ctx, opt.ref_id, body.location.ref_id, body.action == "enable")
            for opt in body.options if opt.success]


def store_action(body: p.StoreAction, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    if not body.status:
        return []
    # a disable is a manual switch-off on a platform, not the end of trading hours: PAUSED
    status = "OPEN" if body.action == "enable" else "PAUSED"
    return [make(UpdateStoreStatus, store_id=ctx.resolve("store", body.location_ref_id),
                 external_store_id=body.location_ref_id, status=status)]


def applied_entries(body: p.InventoryUpdate) -> list[p.CatalogueEntry]:
    """Catalogue entries the platform created or updated without error (deletions carry no price)."""
    return [e for e in [*body.items, *body.options]
            if not e.upipr_status.error and e.upipr_status.action in ("A", "U") and e.price is not None]


def inventory_update(body: p.InventoryUpdate, make: CommandFactory, ctx: MappingContext
                     ) -> list[CommandBase]:
    currency = ctx.tenant.default_currency
    if not currency:
        raise InvalidCommand("UrbanPiper sends no currency: set the tenant's default_currency",
                             reason_code="no_currency")
    out: list[CommandBase] = []
    for entry in applied_entries(body):
        try:
            amount = to_minor(to_decimal(entry.price), currency)
        except MoneyError as exc:
            raise UnparseablePayload(f"{entry.ref_id}: {exc}", reason_code="bad_amount") from exc
        # only the price: the rest of the item is ours, echoed back, and an upsert would blank it
        out.append(make(UpdatePrice, item_id=ctx.resolve("item", entry.ref_id), external_item_id=entry.ref_id,
                        amount_minor=amount, currency=currency, price_type="menu"))
    return out


def order_status_update(body: p.OrderStatusUpdate, make: CommandFactory, ctx: MappingContext
                        ) -> list[CommandBase]:
    external = str(body.order_id)
    return [make(UpdateOrderStatus, store_id=ctx.resolve("store", body.store_id), order_id=order_id(external),
                 external_order_id=external, status=ORDER_STATES[body.new_state.lower()])]


def keys(body: Any) -> frozenset[MappingKey]:
    pairs: list[tuple[str, str]] = []
    if isinstance(body, p.ItemStateToggle):
        for loc in body.status:
            pairs.append(("store", loc.location.ref_id))
            pairs.extend(("item", i.ref_id) for i in loc.items if i.status == "success")
    elif isinstance(body, p.OptionStateToggle):
        pairs.append(("store", body.location.ref_id))
        pairs.extend(("item", o.ref_id) for o in body.options if o.success)
    elif isinstance(body, p.StoreAction):
        pairs.append(("store", body.location_ref_id))
    elif isinstance(body, p.InventoryUpdate):
        pairs.extend(("item", e.ref_id) for e in applied_entries(body))
    elif isinstance(body, p.OrderStatusUpdate):
        pairs.append(("store", body.store_id))
    return frozenset(MappingKey(entity, ext) for entity, ext in pairs)  # type: ignore[arg-type]


TRANSLATORS: dict[str, Translate] = {
    "item_state_toggle": item_state_toggle,  # type: ignore[dict-item]
    "option_state_toggle": option_state_toggle,  # type: ignore[dict-item]
    "store_action": store_action,  # type: ignore[dict-item]
    "inventory_update": inventory_update,  # type: ignore[dict-item]
    "order_status_update": order_status_update,  # type: ignore[dict-item]
}
