"""One pure function per PetPooja callback: payload + mapping context → canonical commands.

The store is the restaurant's ``menusharingcode`` (= ``restID`` in callbacks); items are ``itemid``, addon
items their ``addonitemid`` (both as items), variations the item-variation row ``id`` (as variants). Prices
are major-unit decimal strings; the currency comes from ``currency_html`` or the tenant's default.
Local times (``customTurnOnTime``) are read in the tenant's timezone.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.adapters.base import CommandFactory
from ingest.adapters.petpooja import payloads as p
from ingest.canonical.commands import (
    CommandBase,
    ModifierGroup,
    ModifierOption,
    UpdateOrderStatus,
    UpdatePrice,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertMenuItem,
    UpsertVariant,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor
from ingest.errors import InvalidCommand, UnparseablePayload

Translate = Callable[[Any, CommandFactory, MappingContext], list[CommandBase]]

#: -1 cancelled, 1/2/3 accepted, 4 dispatched, 5 food ready, 10 delivered
ORDER_STATUS: dict[str, str] = {
    "-1": "CANCELLED", "1": "ACCEPTED", "2": "ACCEPTED", "3": "ACCEPTED", "4": "PICKED_UP", "5": "READY",
    "10": "COMPLETED",
}
_SYMBOLS = {"₹": "INR", "&#8377;": "INR", "rs": "INR", "rs.": "INR", "inr": "INR"}


def order_id(external: str) -> str:
    """Orders have no mapping entity: the canonical id is the vendor id, prefixed with the provider."""
    return f"petpooja:{external}"


def _currency(restaurant: p.Restaurant, ctx: MappingContext) -> str:
    symbol = (restaurant.details.currency_html or "").strip().lower()
    iso = _SYMBOLS.get(symbol) or ctx.tenant.default_currency
    if not iso:
        raise InvalidCommand(f"no currency for symbol {symbol!r}: set the tenant's default_currency",
                             reason_code="no_currency")
    return iso


def _minor(amount: str, iso: str) -> int:
    try:
        return to_minor(amount, iso)
    except MoneyError as exc:
        raise UnparseablePayload(str(exc), reason_code="bad_amount") from exc


#: local times ("customTurnOnTime", "turn_on_time") come as "YYYY-MM-DD HH:mm", some with seconds
LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def _local(text: str | None, ctx: MappingContext) -> datetime | None:
    if not text:
        return None
    try:
        zone = ZoneInfo(ctx.tenant.timezone)
        return _naive(text.strip()).replace(tzinfo=zone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise UnparseablePayload(f"bad local time {text!r}: {exc}", reason_code="bad_time") from exc


def _naive(text: str) -> datetime:
    for fmt in LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"matches none of {', '.join(LOCAL_FORMATS)}")


def _active(variations: list[p.Variation]) -> list[p.Variation]:
    """Variations switched off in the POS ("active": "0") are not offered, like inactive addon items."""
    return [v for v in variations if v.active == "1"]


def _addon_groups(item: p.Item, groups: dict[str, p.AddonGroup], iso: str) -> list[ModifierGroup]:
    out = []
    for ref in item.addon:
        group = groups.get(ref.addon_group_id)
        if group is None or group.active != "1":
            continue
        options = [ModifierOption(external_item_id=a.addonitemid, name=a.addonitem_name,
                                  amount_minor=_minor(a.addonitem_price, iso))
                   for a in group.addongroupitems if a.active == "1"]
        try:
            low, high = int(ref.addon_item_selection_min or 0), int(ref.addon_item_selection_max or 0)
        except ValueError as exc:
            raise UnparseablePayload(f"addon selection bounds are not integers: {exc}",
                                     reason_code="invalid_addon_bounds") from exc
        out.append(ModifierGroup(name=group.addongroup_name, min=low, max=high, options=options))
    return out


def push_menu(body: p.PushMenu, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    categories = {c.categoryid: c.categoryname for c in body.categories}
    groups = {g.addongroupid: g for g in body.addongroups}
    out: list[CommandBase] = []
    for restaurant in body.restaurants:
        iso = _currency(restaurant, ctx)
        store = ctx.resolve("store", restaurant.details.menusharingcode)
        for item in body.items:
            item_id = ctx.resolve("item", item.itemid)
            out.append(make(UpsertMenuItem, store_id=store, item_id=item_id, external_item_id=item.itemid,
                            name=item.itemname, description=item.itemdescription or None,
                            category=categories.get(item.item_categoryid or ""),
                            amount_minor=_minor(item.price, iso), currency=iso,
                            modifier_groups=_addon_groups(item, groups, iso),
                            available=item.active == "1" and item.in_stock != "0"))
            for var in _active(item.variation):
                variant_id = ctx.resolve("variant", var.id)
                attributes = {"group": var.groupname or item.variation_groupname or ""}
                if var.variationid:
                    attributes["variationId"] = var.variationid
                out.append(make(UpsertVariant, store_id=store, item_id=item_id, variant_id=variant_id,
                                external_variant_id=var.id, name=var.name, attributes=attributes))
                # UpsertVariant has no price: a variation's price is its own command
                out.append(make(UpdatePrice, store_id=store, item_id=item_id, external_item_id=item.itemid,
                                variant_id=variant_id, amount_minor=_minor(var.price, iso), currency=iso,
                                price_type="menu"))
    return out


def stock_change(body: p.StockChange, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    until = None
    if not body.inStock and (body.autoTurnOnTime or "custom") == "custom":
        until = _local(body.customTurnOnTime, ctx)
    return [make(UpdateStockLevel, item_id=ctx.resolve("item", ext), external_item_id=ext, mode="absolute",
                 quantity=None, available=body.inStock, reason="snooze", available_again_at=until)
            for ext in body.itemID]


def update_store_status(body: p.StoreStatus, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    # switched off from the POS, with a reason: a pause, not the end of trading hours
    if body.store_status not in ("0", "1"):
        raise UnparseablePayload(f"store_status {body.store_status!r} is neither 0 nor 1",
                                 reason_code="unknown_status")
    opened = body.store_status == "1"
    return [make(UpdateStoreStatus, external_store_id=body.restID, status="OPEN" if opened else "PAUSED",
                 until=None if opened else _local(body.turn_on_time, ctx))]


def update_order(body: p.OrderUpdate, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    return [make(UpdateOrderStatus, order_id=order_id(body.orderID), external_order_id=body.orderID,
                 status=ORDER_STATUS[body.status])]


def keys(body: Any) -> frozenset[MappingKey]:
    if isinstance(body, p.PushMenu):
        out = {MappingKey("store", r.details.menusharingcode) for r in body.restaurants}
        out.update(MappingKey("item", i.itemid) for i in body.items)
        out.update(MappingKey("variant", v.id) for i in body.items for v in _active(i.variation))
        return frozenset(out)
    out = {MappingKey("store", body.restID)}
    if isinstance(body, p.StockChange):
        out.update(MappingKey("item", ext) for ext in body.itemID)
    return frozenset(out)


TRANSLATORS: dict[str, Translate] = {
    "push_menu": push_menu,  # type: ignore[dict-item]
    "item_out_of_stock": stock_change,  # type: ignore[dict-item]
    "item_in_stock": stock_change,  # type: ignore[dict-item]
    "update_store_status": update_store_status,  # type: ignore[dict-item]
    "update_order": update_order,  # type: ignore[dict-item]
}
