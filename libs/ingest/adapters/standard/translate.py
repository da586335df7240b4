"""One pure function per Standard API operation: request + mapping context → canonical commands.

Products sync semantics (documented in docs/partner-api.md): a product is a merchant-wide catalogue item
(its variants too); price, menu entry and availability are per outlet, repeated for every listed outlet.
Variant without a price of its own sells at the product's price (no variant UpdatePrice is emitted).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from ingest.adapters.base import CommandFactory
from ingest.adapters.standard import payloads as p
from ingest.canonical.commands import (
    CommandBase,
    ModifierGroup,
    ModifierOption,
    UpdateOrderStatus,
    UpdatePrice,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertCatalogItem,
    UpsertMenuItem,
    UpsertVariant,
)
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.units import quantity

Translate = Callable[[object, str | None, CommandFactory, MappingContext], list[CommandBase]]


def outlet_ids(request: object, path_id: str | None) -> list[str]:
    """Every outlet the request names (its ``store`` mapping keys), in request order."""
    if isinstance(request, p.OutletsSyncRequest):
        return [o.id for o in request.outlets]
    if isinstance(request, p.ProductsSyncRequest):
        return list(request.outlet_ids)
    if isinstance(request, p.OrderStatusRequest):
        return [request.outlet_id]
    if isinstance(request, (p.OutletStatusRequest, p.OutletBusyRequest)) and path_id:
        return [path_id]
    return []


def keys(request: p.RequestBase, path_id: str | None, merchant: str) -> frozenset[MappingKey]:
    out = {MappingKey("merchant", merchant)}
    out.update(MappingKey("store", s) for s in outlet_ids(request, path_id))
    if isinstance(request, p.ProductsSyncRequest):
        for product in request.products:
            out.add(MappingKey("item", product.id))
            out.update(MappingKey("variant", v.id) for v in product.variants)
    return frozenset(out)


# --- outlets ----------------------------------------------------------------------------------
def outlets_sync(request: p.OutletsSyncRequest, path_id: str | None, make: CommandFactory,
                 ctx: MappingContext) -> list[CommandBase]:
    return [make(UpdateStoreStatus, store_id=ctx.resolve("store", o.id), external_store_id=o.id,
                 status=o.status) for o in request.outlets]


def outlet_status(request: p.OutletStatusRequest, path_id: str | None, make: CommandFactory,
                  ctx: MappingContext) -> list[CommandBase]:
    assert path_id is not None  # parse guarantees it for this family
    return [make(UpdateStoreStatus, store_id=ctx.resolve("store", path_id), external_store_id=path_id,
                 status=request.status, until=request.until)]


def outlet_busy(request: p.OutletBusyRequest, path_id: str | None, make: CommandFactory,
                ctx: MappingContext) -> list[CommandBase]:
    assert path_id is not None
    if not request.busy:
        return [make(UpdateStoreStatus, store_id=ctx.resolve("store", path_id), external_store_id=path_id,
                     status="OPEN")]
    return [make(UpdateStoreStatus, store_id=ctx.resolve("store", path_id), external_store_id=path_id,
                 status="BUSY", busy_delay_minutes=request.delay_minutes, until=request.until)]


# --- orders -----------------------------------------------------------------------------------
def order_status(request: p.OrderStatusRequest, path_id: str | None, make: CommandFactory,
                 ctx: MappingContext) -> list[CommandBase]:
    assert path_id is not None
    # {id} is the order id as we sent it to the partner; their own reference, if any, is the external id
    return [make(UpdateOrderStatus, store_id=ctx.resolve("store", request.outlet_id), order_id=path_id,
                 external_order_id=request.partner_order_ref or path_id, status=request.status)]


# --- products ---------------------------------------------------------------------------------
def _modifier_groups(request: p.ProductsSyncRequest, product: p.Product) -> list[ModifierGroup]:
    by_id = {g.id: g for g in request.modifier_groups}
    out = []
    for group_id in product.modifier_group_ids:
        group = by_id[group_id]  # the request model checked every reference
        options = [ModifierOption(external_item_id=o.id, name=o.name,
                                  amount_minor=o.price.amount_minor if o.price else 0)
                   for o in group.options if o.available]
        out.append(ModifierGroup(name=group.name, min=group.min, max=group.max, options=options))
    return out


def _stock(make: CommandFactory, store_id: str, item_id: str, external_item_id: str,
           variant_id: str | None, stock: p.Stock | None, available: bool,
           again: datetime | None) -> CommandBase:
    # a stated count of zero means unavailable whatever the flag says; no count leaves the flag alone
    if stock is not None and Decimal(stock.quantity) <= 0:
        available = False
    return make(UpdateStockLevel, store_id=store_id, item_id=item_id, external_item_id=external_item_id,
                variant_id=variant_id, mode="absolute",
                quantity=quantity(stock.quantity) if stock else None, unit=stock.unit if stock else None,
                available=available, reason="snapshot", available_again_at=None if available else again)


def _prices(make: CommandFactory, store_id: str, item_id: str, external_item_id: str,
            variant_id: str | None, price: p.Money | None, sale: p.Money | None,
            base_type: str) -> list[CommandBase]:
    out: list[CommandBase] = []
    for money, price_type in ((price, base_type), (sale, "sale")):
        if money is not None:
            out.append(make(UpdatePrice, store_id=store_id, item_id=item_id,
                            external_item_id=external_item_id, variant_id=variant_id,
                            amount_minor=money.amount_minor, currency=money.currency, price_type=price_type))
    return out


def products_sync(request: p.ProductsSyncRequest, path_id: str | None, make: CommandFactory,
                  ctx: MappingContext) -> list[CommandBase]:
    out: list[CommandBase] = []
    items = {product.id: ctx.resolve("item", product.id) for product in request.products}
    variants = {v.id: ctx.resolve("variant", v.id) for product in request.products for v in product.variants}
    # merchant-wide first: downstream sees the item before its outlet prices and stock
    for product in request.products:
        item_id = items[product.id]
        out.append(make(UpsertCatalogItem, store_id=None, item_id=item_id, external_item_id=product.id,
                        name=product.name, description=product.description, brand=product.brand,
                        category=product.category, gtin=product.gtin, image_urls=list(product.image_urls),
                        attributes=dict(sorted(product.attributes.items())), active=product.active))
        for v in product.variants:
            out.append(make(UpsertVariant, store_id=None, item_id=item_id, variant_id=variants[v.id],
                            external_variant_id=v.id, name=v.name,
                            attributes=dict(sorted(v.attributes.items())), gtin=v.gtin))
    currency = request.currency()
    # a menu price is what the outlet charges on that menu; without a menu it is the item's base price
    base_type = "menu" if request.menu else "base"
    for outlet in request.outlet_ids:
        store_id = ctx.resolve("store", outlet)
        for product in request.products:
            item_id = items[product.id]
            if request.menu is not None:
                out.append(make(UpsertMenuItem, store_id=store_id, menu_id=request.menu.id, item_id=item_id,
                                external_item_id=product.id, name=product.name,
                                description=product.description, category=product.category,
                                amount_minor=product.price.amount_minor if product.price else None,
                                currency=product.price.currency if product.price else currency,
                                modifier_groups=_modifier_groups(request, product),
                                available=product.available and product.active))
            out += _prices(make, store_id, item_id, product.id, None, product.price, product.sale_price,
                           base_type)
            out.append(_stock(make, store_id, item_id, product.id, None, product.stock,
                              product.available and product.active, product.available_again_at))
            for v in product.variants:
                out += _prices(make, store_id, item_id, product.id, variants[v.id], v.price, v.sale_price,
                               base_type)
                out.append(_stock(make, store_id, item_id, product.id, variants[v.id], v.stock,
                                  product.available and product.active and v.available,
                                  product.available_again_at))
    return out


TRANSLATORS: dict[str, Translate] = {
    "outlets.sync": outlets_sync,  # type: ignore[dict-item]
    "products.sync": products_sync,  # type: ignore[dict-item]
    "outlets.status": outlet_status,  # type: ignore[dict-item]
    "outlets.busy": outlet_busy,  # type: ignore[dict-item]
    "orders.status": order_status,  # type: ignore[dict-item]
}
