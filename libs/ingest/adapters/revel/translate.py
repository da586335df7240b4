"""One pure function per Revel event: payload + mapping context → canonical commands.

Items are Revel product ids; modifiers have their own id space, so they are keyed ``modifier:<id>``.
The store is the establishment id (``X-Revel-Establishment-Id`` or the product's establishment URI),
the merchant the Revel instance. Prices are major-unit decimals in the tenant's currency.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.adapters.base import CommandFactory
from ingest.adapters.revel import payloads as p
from ingest.canonical.commands import CommandBase, UpdatePrice, UpdateStockLevel, UpsertCatalogItem
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor
from ingest.errors import InvalidCommand, UnparseablePayload

Translate = Callable[[Any, CommandFactory, MappingContext], list[CommandBase]]


def item_key(body: p.InOutStock) -> str:
    return str(body.id) if body.type == "product" else f"{body.type}:{body.id}"


def establishment(uri: str | None) -> str | None:
    """``/enterprise/Establishment/1/`` → ``1``."""
    parts = [x for x in (uri or "").split("/") if x]
    return parts[-1] if parts else None


def inout_stock(body: p.InOutStock, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    external = item_key(body)
    return [make(UpdateStockLevel, item_id=ctx.resolve("item", external), external_item_id=external,
                 mode="absolute", quantity=None, available=body.instock, reason="snooze")]


def menu_updated(body: p.MenuUpdated, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    # carries no menu: the poller pulls /resources/Product/ for the establishment
    return []


def product_list(body: p.ProductList, make: CommandFactory, ctx: MappingContext) -> list[CommandBase]:
    currency = ctx.tenant.default_currency
    if not currency:
        raise InvalidCommand("Revel sends no currency: set the tenant's default_currency",
                             reason_code="no_currency")
    out: list[CommandBase] = []
    for product in body.objects:
        external = str(product.id)
        item_id = ctx.resolve("item", external)
        attributes = {k: v for k, v in (("sku", product.sku), ("uuid", product.uuid),
                                        ("categoryUri", product.category)) if v}
        out.append(make(UpsertCatalogItem, store_id=None, item_id=item_id, external_item_id=external,
                        name=product.name, description=product.description or None,
                        gtin=product.barcode or None,
                        attributes=attributes, active=product.active))
        if product.price is None:
            # the product stands without a price: no UpdatePrice (nor its store) rather than refusing the list
            continue
        try:
            amount = to_minor(product.price, currency)
        except MoneyError as exc:
            raise UnparseablePayload(f"product {external}: {exc}", reason_code="bad_amount") from exc
        store = establishment(product.establishment)
        out.append(make(UpdatePrice, store_id=ctx.resolve_optional("store", store), item_id=item_id,
                        external_item_id=external, amount_minor=amount, currency=currency, price_type="base"))
    return out


def keys(body: Any) -> frozenset[MappingKey]:
    if isinstance(body, p.InOutStock):
        return frozenset({MappingKey("item", item_key(body))})
    if isinstance(body, p.ProductList):
        out = {MappingKey("item", str(x.id)) for x in body.objects}
        # only priced products resolve their establishment (on their UpdatePrice)
        stores = {establishment(x.establishment) for x in body.objects if x.price is not None}
        out.update(MappingKey("store", s) for s in stores if s)
        return frozenset(out)
    return frozenset()


TRANSLATORS: dict[str, Translate] = {
    "inout.stock": inout_stock,  # type: ignore[dict-item]
    "menu.updated": menu_updated,  # type: ignore[dict-item]
    "product.list": product_list,  # type: ignore[dict-item]
}
