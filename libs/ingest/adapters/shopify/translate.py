"""One pure function per Shopify topic: typed body + mapping context → canonical commands.

Identity (documented in docs/connectors-erp.md): merchant = ``X-Shopify-Shop-Domain``; catalog item = product
``id``; variant = variant ``id``; store = ``location_id``. ``inventory_levels/update`` names only the
``inventory_item_id`` (1:1 with a variant), so stock resolves ``variant:inventory_item:<id>`` and
``item:inventory_item:<id>``: mapping rows the tenant imports or the mapper derives from the
``inventoryItemId`` attribute every ``UpsertVariant`` carries.

Prices: Shopify sends decimal strings with no currency, so the currency is the source option ``currency``
or the tenant's ``default_currency``. ``compare_at_price`` above ``price`` is the list (base) price and
``price`` the sale price; otherwise ``price`` is the base price.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ingest.adapters.base import CommandFactory
from ingest.adapters.shopify import payloads as p
from ingest.canonical.commands import CommandBase, UpdatePrice, UpdateStockLevel, UpsertCatalogItem, UpsertVariant
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_decimal, to_minor
from ingest.canonical.units import quantity
from ingest.errors import UnparseablePayload

Translate = Callable[[object, CommandFactory, MappingContext, str | None], list[CommandBase]]


def inventory_item_key(inventory_item_id: int) -> str:
    """The external id under which an inventory item's variant and item are mapped."""
    return f"inventory_item:{inventory_item_id}"


def keys(topic: str, body: object, shop: str | None) -> frozenset[MappingKey]:
    out: set[MappingKey] = {MappingKey("merchant", shop)} if shop else set()
    if isinstance(body, p.Product):
        out.add(MappingKey("item", str(body.id)))
        out.update(MappingKey("variant", str(v.id)) for v in body.variants)
    elif isinstance(body, p.ProductDeleted):
        out.add(MappingKey("item", str(body.id)))
    elif isinstance(body, p.InventoryLevel):
        ref = inventory_item_key(body.inventory_item_id)
        out |= {MappingKey("store", str(body.location_id)), MappingKey("variant", ref), MappingKey("item", ref)}
    return frozenset(out)


def _blank(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def _variant_attributes(product: p.Product, variant: p.Variant) -> dict[str, str]:
    attributes: dict[str, str] = {}
    names = {option.position: option.name for option in product.options}
    for position, value in ((1, variant.option1), (2, variant.option2), (3, variant.option3)):
        # a product without options has one variant titled "Default Title": not a real attribute; a value
        # whose option the body does not list (Shopify's own sample sends ``"options": []``) keeps its slot name
        if value and value != "Default Title":
            attributes[names.get(position, f"option{position}")] = value
    if variant.sku:
        attributes["sku"] = variant.sku
    if variant.inventory_item_id is not None:
        attributes["inventoryItemId"] = str(variant.inventory_item_id)
    if variant.inventory_policy:
        attributes["inventoryPolicy"] = variant.inventory_policy
    return attributes


def _prices(make: CommandFactory, item_id: str, external_item: str, variant: p.Variant, external_variant: str,
            variant_id: str, currency: str) -> list[CommandBase]:
    price, compare_at = _blank(variant.price), _blank(variant.compare_at_price)
    if price is None:
        return []
    try:
        on_sale = compare_at is not None and to_decimal(compare_at) > to_decimal(price)
        amounts = [("base", compare_at), ("sale", price)] if on_sale else [("base", price)]
        return [make(UpdatePrice, item_id=item_id, external_item_id=external_item, variant_id=variant_id,
                     amount_minor=to_minor(amount, currency), currency=currency, price_type=kind)
                for kind, amount in amounts]
    except MoneyError as exc:
        raise UnparseablePayload(f"variant {external_variant}: {exc}", reason_code="invalid_price") from exc


def product_upserted(body: p.Product, make: CommandFactory, ctx: MappingContext,
                     currency: str | None) -> list[CommandBase]:
    return product_commands(body, str(body.id), [str(v.id) for v in body.variants], make, ctx, currency)


def product_commands(body: p.Product, external_item: str, external_variants: list[str], make: CommandFactory,
                     ctx: MappingContext, currency: str | None) -> list[CommandBase]:
    """A product's item upsert, then each variant's upsert and prices, under the given external ids: a
    webhook's numeric ids, or a CSV export's handle and SKU keys (``feed``)."""
    if currency is None and any(_blank(v.price) for v in body.variants):
        raise UnparseablePayload("Shopify prices carry no currency and neither the source option 'currency' "
                                 "nor the tenant's default_currency is set", reason_code="missing_currency")
    item_id = ctx.resolve("item", external_item)
    attributes = {k: v for k, v in (("handle", body.handle), ("productType", body.product_type),
                                    ("tags", body.tags), ("status", body.status)) if v}
    category = (body.category.full_name or body.category.name) if body.category else None
    out: list[CommandBase] = [make(
        UpsertCatalogItem, item_id=item_id, external_item_id=external_item, name=body.title,
        description=body.body_html, brand=body.vendor, category=category or _blank(body.product_type),
        image_urls=[i.src for i in sorted(body.images, key=lambda i: i.position or 0)],
        attributes=attributes, active=body.status == "active")]
    for variant, external_variant in zip(body.variants, external_variants, strict=True):
        variant_id = ctx.resolve("variant", external_variant)
        out.append(make(UpsertVariant, item_id=item_id, variant_id=variant_id, external_variant_id=external_variant,
                        name=variant.title, attributes=_variant_attributes(body, variant),
                        gtin=_blank(variant.barcode)))
        out.extend(_prices(make, item_id, external_item, variant, external_variant, variant_id, currency or ""))
    return out


def product_deleted(body: p.ProductDeleted, make: CommandFactory, ctx: MappingContext,
                    currency: str | None) -> list[CommandBase]:
    # the body is only {"id": N}: a tombstone; the name is a placeholder consumers must not display
    return [make(UpsertCatalogItem, item_id=ctx.resolve("item", body.id), external_item_id=str(body.id),
                 name=f"deleted Shopify product {body.id}", active=False)]


def inventory_level_updated(body: p.InventoryLevel, make: CommandFactory, ctx: MappingContext,
                            currency: str | None) -> list[CommandBase]:
    if body.available is None:
        # an untracked item has no quantity: nothing to say about stock
        return []
    ref = inventory_item_key(body.inventory_item_id)
    qty = Decimal(body.available)
    return [make(UpdateStockLevel, item_id=ctx.resolve("item", ref), external_item_id=ref,
                 variant_id=ctx.resolve("variant", ref), mode="absolute", quantity=quantity(qty), unit="each",
                 available=qty > 0, reason="snapshot")]


TRANSLATORS: dict[str, Translate] = {
    "products/create": product_upserted,  # type: ignore[dict-item]
    "products/update": product_upserted,  # type: ignore[dict-item]
    "products/delete": product_deleted,  # type: ignore[dict-item]
    "inventory_levels/update": inventory_level_updated,  # type: ignore[dict-item]
}
