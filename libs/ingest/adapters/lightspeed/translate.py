"""One pure function per K-Series notification: payload + mapping context → canonical commands.

Items are SKUs, stores the ``businessLocationId``. A sales restriction with a count is a quantity that
may still be sold; count 0 or no count while restricted means unavailable. Menu prices are JSON numbers in
major units, in the business location's currency (the menu names none: the tenant's default).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ingest.adapters.base import CommandFactory
from ingest.adapters.lightspeed import payloads as p
from ingest.canonical.commands import (
    CommandBase,
    UpdateOrderStatus,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertMenuItem,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor
from ingest.canonical.units import quantity
from ingest.errors import InvalidCommand, UnparseablePayload

Translate = Callable[[Any, CommandFactory, MappingContext], list[CommandBase]]

#: order notification statuses (DELIVERED is opt-in)
ORDER_STATUS: dict[str, str] = {
    "SUCCESS": "ACCEPTED", "FAILURE": "FAILED", "READY_FOR_PICKUP": "READY", "IN_DELIVERY": "PICKED_UP",
    "DELIVERED": "COMPLETED", "CLOSED": "COMPLETED", "ABANDONED": "CANCELLED", "CANCELLED": "CANCELLED",
}


def order_id(external: str) -> str:
    """Orders have no mapping entity: the canonical id is the vendor id, prefixed with the provider."""
    return f"lightspeed:{external}"


def item_availability(body: p.ItemAvailability, make: CommandFactory, ctx: MappingContext
                      ) -> list[CommandBase]:
    if body.status == "NOT_RESTRICTED":
        available, qty, reason = True, None, "snooze"
    elif body.count:
        # a limited quantity still on sale: a count, not a toggle
        available, qty, reason = body.count > 0, quantity(body.count), "adjustment"
    else:
        available, qty, reason = False, None if body.count is None else "0", "snooze"
    return [make(UpdateStockLevel, item_id=ctx.resolve("item", body.sku), external_item_id=body.sku,
                 mode="absolute", quantity=qty, available=available, reason=reason)]


def readiness(body: p.Readiness, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    pos = body.posStatus
    if pos.salesPeriod == "CLOSED":
        status = "CLOSED"
    elif body.status == "READY" and pos.acceptingOnlineOrders is not False:
        status = "OPEN"
    else:
        status = "PAUSED"  # trading but not taking online orders (no device, switched off)
    return [make(UpdateStoreStatus, external_store_id=str(body.businessLocationId), status=status)]


def order_notification(body: p.OrderNotification, make: CommandFactory, ctx: MappingContext
                       ) -> list[CommandBase]:
    return [make(UpdateOrderStatus, order_id=order_id(body.thirdPartyReference),
                 external_order_id=body.thirdPartyReference, status=ORDER_STATUS[body.status])]


def menu_items(menu: p.MenuLoad) -> Iterator[tuple[str, p.MenuEntry]]:
    """Every ``menuItem`` with its group's name, sub-screens flattened."""
    for group in menu.menuEntryGroups:
        stack = list(reversed(group.menuEntry))
        while stack:
            entry = stack.pop()
            if entry.type == "menuItem" and entry.sku:
                yield group.name, entry
            stack.extend(reversed(entry.menuEntry))


def menu_load(menu: p.MenuLoad, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    currency = ctx.tenant.default_currency
    if not currency:
        raise InvalidCommand("K-Series menus name no currency: set the tenant's default_currency",
                             reason_code="no_currency")
    out: list[CommandBase] = []
    for group, entry in menu_items(menu):
        sku = str(entry.sku)
        try:
            amount = None if entry.productPrice is None else to_minor(entry.productPrice, currency)
        except MoneyError as exc:
            raise UnparseablePayload(f"{sku}: {exc}", reason_code="bad_amount") from exc
        out.append(make(UpsertMenuItem, menu_id=f"lightspeed:{menu.ikentooMenuId}",
                        item_id=ctx.resolve("item", sku), external_item_id=sku,
                        name=entry.productName or sku, category=group, amount_minor=amount,
                        currency=currency))
    return out


def keys(body: Any) -> frozenset[MappingKey]:
    if isinstance(body, p.MenuLoad):
        return frozenset(MappingKey("item", str(e.sku)) for _, e in menu_items(body))
    out = {MappingKey("store", str(body.businessLocationId))}
    if isinstance(body, p.ItemAvailability):
        out.add(MappingKey("item", body.sku))
    return frozenset(out)


TRANSLATORS: dict[str, Translate] = {
    "ITEM": item_availability,  # type: ignore[dict-item]
    "ORDER_API": readiness,  # type: ignore[dict-item]
    "ORDER": order_notification,  # type: ignore[dict-item]
    "menu.load": menu_load,  # type: ignore[dict-item]
}
