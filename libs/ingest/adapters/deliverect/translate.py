"""One pure function per Deliverect webhook: payload + mapping context → canonical commands.

Items are keyed by PLU (the Mongo ``_id`` is Deliverect-internal); the store is the channel link, the
merchant the Deliverect account. Prices are integers with the currency's minor digits implied (two,
three for three-decimal currencies such as BHD); the currency is Deliverect's integer enum.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ingest.adapters.base import CommandFactory
from ingest.adapters.deliverect import payloads as p
from ingest.canonical.commands import (
    CommandBase,
    ModifierGroup,
    ModifierOption,
    UpdateOrderStatus,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertMenuItem,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, exponent, minor_from_implied
from ingest.errors import InvalidCommand, UnparseablePayload

Translate = Callable[[Any, CommandFactory, MappingContext], list[CommandBase]]

#: Deliverect's currency enum (developers.deliverect.com "Currencies - List"); unknown codes are refused
CURRENCIES: dict[int, str] = {
    1: "EUR", 2: "GBP", 3: "USD", 4: "CAD", 5: "NZD", 6: "AUD", 7: "BHD", 8: "AED", 9: "SEK", 10: "CHF",
    11: "RON", 12: "MAD", 13: "PLN", 14: "NOK", 15: "MXN", 16: "DKK",
}

#: order status codes with a canonical meaning; the rest (parsed, received, new, duplicate, printed) are
#: acknowledged and ignored, as Deliverect asks of unknown codes
ORDER_STATUS: dict[int, str] = {
    20: "ACCEPTED", 50: "PREPARING", 60: "READY", 70: "READY", 80: "PICKED_UP", 90: "COMPLETED",
    95: "COMPLETED", 100: "CANCELLED", 110: "CANCELLED", 120: "FAILED", 121: "FAILED", 124: "FAILED",
}

_BUSY = {"PAUSED": "PAUSED", "BUSY": "BUSY", "ONLINE": "OPEN"}


def order_id(external: str) -> str:
    """Orders have no mapping entity: the canonical id is the vendor id, prefixed with the provider."""
    return f"deliverect:{external}"


def currency(code: int | None, ctx: MappingContext) -> str:
    """The menu's currency; a menu naming none (the field is optional) is in the tenant's currency."""
    if code is None:
        if not ctx.tenant.default_currency:
            raise InvalidCommand("the menu names no currency: set the tenant's default_currency",
                                 reason_code="no_currency")
        return ctx.tenant.default_currency
    try:
        return CURRENCIES[code]
    except KeyError:
        raise UnparseablePayload(f"unknown Deliverect currency code {code}", reason_code="unknown_currency") \
            from None


def amount_minor(price: int, iso: str, implied_digits: int | None) -> int:
    """Deliverect's integer price in the currency's minor units; ``implied_digits`` overrides the exponent."""
    try:
        return minor_from_implied(price, implied_digits if implied_digits is not None else exponent(iso), iso)
    except MoneyError as exc:
        raise UnparseablePayload(str(exc), reason_code="bad_amount") from exc


def _snooze_end(text: str | None) -> datetime | None:
    # menu snoozes are written "2025-05-14 22:00:00.000000" without a zone; the snooze webhook uses UTC
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnparseablePayload(f"snooze end is not a date-time: {text[:40]!r}",
                                 reason_code="invalid_timestamp") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _category_of(menu: p.Menu) -> dict[str, str]:
    return {product_id: cat.name for cat in menu.categories
            for product_id in [*cat.sub_products, *cat.products]}


def _sellables(menu: p.Menu) -> list[p.Product]:
    """What is sold on its own; invisible products are omitted by Deliverect already.

    A bundle under a product is the choice inside a meal deal, and a product that is only a choice in a
    bundle or group (often a ``#``-suffixed PLU copy at price 0) is sold only within it: neither is an item.
    """
    in_deals = {sub for product in menu.products.values() for sub in product.sub_products}
    choices = {sub for group in [*menu.modifier_groups.values(), *menu.bundles.values()]
               for sub in group.sub_products}
    listed = _category_of(menu)
    return [*(x for x in menu.products.values() if x.id in listed or x.id not in choices),
            *(b for b in menu.bundles.values() if b.id not in in_deals)]


def _modifier_groups(menu: p.Menu, product: p.Product, iso: str, digits: int | None) -> list[ModifierGroup]:
    """A product's modifier groups and meal-deal bundles; a group holds modifiers or (in bundles) products."""
    groups = []
    for group_id in product.sub_products:
        group = menu.modifier_groups.get(group_id) or menu.bundles.get(group_id)
        if group is None:
            continue
        members = (menu.modifiers.get(m) or menu.products.get(m) for m in group.sub_products)
        options = [ModifierOption(external_item_id=mod.plu, name=mod.name,
                                  amount_minor=amount_minor(mod.price, iso, digits))
                   for mod in members if mod is not None]
        groups.append(ModifierGroup(name=group.name, min=group.min, max=group.max, options=options))
    return groups


def store_of(body: p.Snooze | p.BusyMode | p.OrderStatus) -> str:
    """The channel link a non-menu webhook is about."""
    return body.channel_link if isinstance(body, p.OrderStatus) else body.channel_link_id


def menu_stores(push: p.MenuPush, menu: p.Menu) -> list[str]:
    """The async flow names the channel links a menu goes to; the sync flow uses the menu's own."""
    return push.stores or [menu.channel_link_id]


def menu_account(menu: p.Menu) -> str | None:
    return next((x.account for x in [*menu.categories, *_sellables(menu)] if x.account), None)


def menu_update(push: p.MenuPush, make: CommandFactory, ctx: MappingContext, *,
                implied_digits: int | None = None) -> list[CommandBase]:
    out: list[CommandBase] = []
    for menu in push.menus:
        iso = currency(menu.currency, ctx)
        categories = _category_of(menu)
        account = menu_account(menu)
        merchant = ctx.resolve("merchant", account) if account else None
        for channel_link in menu_stores(push, menu):
            store = ctx.resolve("store", channel_link)
            for product in _sellables(menu):
                item_id = ctx.resolve("item", product.plu)
                out.append(make(UpsertMenuItem, merchant_id=merchant, store_id=store,
                                menu_id=f"deliverect:{menu.menu_id}", item_id=item_id,
                                external_item_id=product.plu, name=product.name,
                                description=product.description or None, category=categories.get(product.id),
                                amount_minor=amount_minor(product.price, iso, implied_digits), currency=iso,
                                modifier_groups=_modifier_groups(menu, product, iso, implied_digits),
                                available=not product.snoozed))
                if product.snoozed:
                    # the menu item says "unavailable"; only the stock command can say until when
                    snooze = menu.snoozed_products.get(product.snooze_id or "")
                    out.append(make(UpdateStockLevel, merchant_id=merchant, store_id=store, item_id=item_id,
                                    external_item_id=product.plu, mode="absolute", quantity=None,
                                    available=False, reason="snooze",
                                    available_again_at=_snooze_end(snooze.snooze_end if snooze else None)))
    return out


def snooze(body: p.Snooze, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    out: list[CommandBase] = []
    for op in body.operations:
        snoozing = op.action == "snooze"
        for item in op.data.items:
            out.append(make(UpdateStockLevel, item_id=ctx.resolve("item", item.plu),
                            external_item_id=item.plu, mode="absolute", quantity=None,
                            available=not snoozing, reason="snooze",
                            available_again_at=item.snooze_end if snoozing else None))
    return out


def busy_mode(body: p.BusyMode, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    status = _BUSY[body.status]
    return [make(UpdateStoreStatus, external_store_id=body.channel_link_id, status=status,
                 busy_delay_minutes=body.delay if status == "BUSY" else None)]


def order_status(body: p.OrderStatus, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    return [make(UpdateOrderStatus, order_id=order_id(body.order_id), external_order_id=body.order_id,
                 status=ORDER_STATUS[body.status])]


def keys(event_type: str, body: Any) -> frozenset[MappingKey]:
    out: set[MappingKey] = set()
    if isinstance(body, p.MenuPush):
        for menu in body.menus:
            account = menu_account(menu)
            if account:
                out.add(MappingKey("merchant", account))
            out.update(MappingKey("store", s) for s in menu_stores(body, menu))
            out.update(MappingKey("item", x.plu) for x in _sellables(menu))
        return frozenset(out)
    if getattr(body, "account_id", None):
        out.add(MappingKey("merchant", body.account_id))
    out.add(MappingKey("store", store_of(body)))
    if isinstance(body, p.Snooze):
        out.update(MappingKey("item", i.plu) for op in body.operations for i in op.data.items)
    return frozenset(out)


TRANSLATORS: dict[str, Translate] = {
    "menu_update": menu_update,  # type: ignore[dict-item]
    "snooze": snooze,  # type: ignore[dict-item]
    "busy_mode": busy_mode,  # type: ignore[dict-item]
    "order_status_update": order_status,  # type: ignore[dict-item]
}
