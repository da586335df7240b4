"""One pure function per Atlas Kitchen event: payload + mapping context → canonical commands.

Items are the Atlas item/product ``id`` (what ``stock.updated`` names), stores the ``outlet_id``.
Money is integer cents with an ISO currency on each product: already minor units.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ingest.adapters.atlas import payloads as p
from ingest.adapters.base import CommandFactory
from ingest.canonical.commands import (
    CommandBase,
    ModifierGroup,
    ModifierOption,
    UpdateStockLevel,
    UpsertMenuItem,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import InvalidCommand

Translate = Callable[[Any, CommandFactory, MappingContext], list[CommandBase]]


def stock_updated(body: p.StockUpdated, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    external = str(body.item_id)
    return [make(UpdateStockLevel, item_id=ctx.resolve("item", external), external_item_id=external,
                 mode="absolute", quantity=None, available=body.is_available, reason="snooze")]


def menu_updated(body: p.MenuUpdated, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    # a notification only: the poller fetches GET /menus/{menu_id} and stores it as a pulled document
    return []


def products(menu: p.MenuDetail) -> Iterator[tuple[str, p.Product]]:
    """Every product with the name of the innermost section holding it."""
    stack = list(reversed(menu.sections))
    while stack:
        section = stack.pop()
        yield from ((section.name, product) for product in section.products)
        stack.extend(reversed(section.sub_sections))


def _groups(product: p.Product) -> list[ModifierGroup]:
    out = []
    for link in product.item_modifier_groups:
        if link.archived:
            continue
        group = link.modifier_group
        low = link.selection_required_min_override
        low = low if low is not None else group.selection_required_min or 0
        high = link.selection_required_max_override
        high = high if high is not None else group.selection_required_max or 0
        options = [ModifierOption(external_item_id=str(m.item.id), name=m.item.name,
                                  amount_minor=m.price_cents_override if m.price_cents_override is not None
                                  else m.item.price_cents)
                   for m in group.modifiers]
        out.append(ModifierGroup(name=group.name, min=low, max=high, options=options))
    return out


def menu_detail(menu: p.MenuDetail, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    if menu.state != "published":
        return []  # drafts are not on sale
    out: list[CommandBase] = []
    for category, product in products(menu):
        currency = product.currency or ctx.tenant.default_currency
        if not currency:
            raise InvalidCommand(f"product {product.id} has no currency", reason_code="no_currency")
        external = str(product.id)
        out.append(make(UpsertMenuItem, menu_id=f"atlas:{menu.id}", item_id=ctx.resolve("item", external),
                        external_item_id=external, name=product.name, description=product.description or None,
                        category=category, amount_minor=product.price_cents, currency=currency.upper(),
                        modifier_groups=_groups(product), available=product.archived_at is None))
    return out


def keys(body: Any) -> frozenset[MappingKey]:
    if isinstance(body, p.StockUpdated):
        return frozenset({MappingKey("store", str(body.outlet_id)), MappingKey("item", str(body.item_id))})
    if isinstance(body, p.MenuDetail) and body.state == "published":
        return frozenset(MappingKey("item", str(prod.id)) for _, prod in products(body))
    return frozenset()


TRANSLATORS: dict[str, Translate] = {
    "stock.updated": stock_updated,  # type: ignore[dict-item]
    "menu.updated": menu_updated,  # type: ignore[dict-item]
    "menu.detail": menu_detail,  # type: ignore[dict-item]
}
