"""One pure function per WooCommerce delivery kind: typed body + mapping context → canonical commands.

Identity (docs/connectors-erp.md): merchant and store = the normalised ``X-WC-Webhook-Source`` (core
WooCommerce has one stock location per shop, so the whole shop is one store); catalog item = product ``id``
(a variation's ``parent_id``); variant = variation ``id``, or the product ``id`` for a simple product.
Money: decimal strings with no currency, so the source option ``currency`` or the tenant's
``default_currency``; ``regular_price`` is the base price and a non-empty ``sale_price`` the sale price while
the sale runs (``on_sale``).
Stock: ``stock_quantity`` is absolute when the product manages its own stock; otherwise only the
``stock_status`` flag is carried (no quantity); ``onbackorder`` is sellable, at any count.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ingest.adapters.base import CommandFactory
from ingest.adapters.woocommerce import payloads as p
from ingest.canonical.commands import CommandBase, UpdatePrice, UpdateStockLevel, UpsertCatalogItem, UpsertVariant
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor
from ingest.canonical.units import QuantityError, quantity
from ingest.errors import UnparseablePayload

Translate = Callable[[object, CommandFactory, MappingContext, str, str | None], list[CommandBase]]

#: product types that are sold as themselves (one variant: the product)
SELLABLE_TYPES = frozenset({"simple", "external"})
_IN_STOCK = frozenset({"instock", "onbackorder"})


def keys(body: object, source: str) -> frozenset[MappingKey]:
    out = {MappingKey("merchant", source)}
    if isinstance(body, p.Deleted):
        out.add(MappingKey("item", str(body.id)))
    elif isinstance(body, p.Product):
        if body.type == "variation":
            out |= {MappingKey("item", str(body.parent_id)), MappingKey("variant", str(body.id)),
                    MappingKey("store", source)}
        else:
            out.add(MappingKey("item", str(body.id)))
            if body.type in SELLABLE_TYPES:
                out |= {MappingKey("variant", str(body.id)), MappingKey("store", source)}
    return frozenset(out)


def _blank(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def _attributes(body: p.Product) -> dict[str, str]:
    out: dict[str, str] = {}
    for attribute in body.attributes:
        value = attribute.option if attribute.option is not None else ", ".join(attribute.options)
        if value:
            out[attribute.name] = value
    if body.sku:
        out["sku"] = body.sku
    return out


def _sale_price(body: p.Product) -> str | None:
    """The sale price while the sale runs: a sale scheduled by ``date_on_sale_from``/``_to`` keeps
    ``sale_price`` set outside its window, where WooCommerce reports ``on_sale`` false and ``price`` is the
    regular price. A CSV export has no ``on_sale``: its sale price is taken as running."""
    return None if body.on_sale is False else _blank(body.sale_price)


def _sellable(body: p.Product, item_id: str, make: CommandFactory, ctx: MappingContext, store_id: str | None,
              currency: str | None) -> list[CommandBase]:
    """Variant, prices and stock of something sold as itself: a simple product or a variation."""
    variant_id = ctx.resolve("variant", body.id)
    external_item_id = str(body.parent_id if body.type == "variation" else body.id)
    out: list[CommandBase] = [make(UpsertVariant, item_id=item_id, variant_id=variant_id,
                                   external_variant_id=str(body.id), name=body.name or None,
                                   attributes=_attributes(body), gtin=_blank(body.global_unique_id))]
    base = _blank(body.regular_price) or _blank(body.price)
    prices = [(kind, amount) for kind, amount in (("base", base), ("sale", _sale_price(body))) if amount]
    if prices and currency is None:
        raise UnparseablePayload("WooCommerce prices carry no currency and neither the source option "
                                 "'currency' nor the tenant's default_currency is set",
                                 reason_code="missing_currency")
    try:
        out.extend(make(UpdatePrice, item_id=item_id, external_item_id=external_item_id, variant_id=variant_id,
                        amount_minor=to_minor(amount, currency or ""), currency=currency, price_type=kind)
                   for kind, amount in prices)
    except MoneyError as exc:
        raise UnparseablePayload(f"product {body.id}: {exc}", reason_code="invalid_price") from exc
    # manage_stock may be "parent" on a variation: the parent's pool, not this variation's own count
    if body.manage_stock is True and body.stock_quantity is not None:
        try:
            qty = Decimal(quantity(body.stock_quantity))
        except QuantityError as exc:
            raise UnparseablePayload(f"product {body.id}: {exc}", reason_code="invalid_quantity") from exc
        # a managed count at or below zero still sells when backorders are allowed (stock_status onbackorder);
        # a negative count (backorders taken) is 0 on hand: an absolute level is never negative
        out.append(make(UpdateStockLevel, store_id=store_id, item_id=item_id, external_item_id=external_item_id,
                        variant_id=variant_id, mode="absolute", quantity=max(qty, Decimal(0)), unit="each",
                        available=qty > 0 or body.stock_status == "onbackorder", reason="snapshot"))
    elif body.stock_status:
        out.append(make(UpdateStockLevel, store_id=store_id, item_id=item_id, external_item_id=external_item_id,
                        variant_id=variant_id, mode="absolute", quantity=None, unit="each",
                        available=body.stock_status in _IN_STOCK, reason="snapshot"))
    return out


def product_upserted(body: p.Product, make: CommandFactory, ctx: MappingContext, source: str,
                     currency: str | None) -> list[CommandBase]:
    sells = body.type == "variation" or body.type in SELLABLE_TYPES
    return product_commands(body, make, ctx, ctx.resolve("store", source) if sells else None, currency)


def product_commands(body: p.Product, make: CommandFactory, ctx: MappingContext, store_id: str | None,
                     currency: str | None) -> list[CommandBase]:
    """A product, variation or simple product's commands; stock goes to ``store_id`` (the webhook source's
    store, or a CSV export's ``store`` source option)."""
    if body.type == "variation":
        return _sellable(body, ctx.resolve("item", body.parent_id), make, ctx, store_id, currency)
    item_id = ctx.resolve("item", body.id)
    attributes = _attributes(body) | {"type": body.type, "status": body.status}
    if body.tags:
        attributes["tags"] = ", ".join(t.name for t in body.tags)
    out: list[CommandBase] = [make(
        UpsertCatalogItem, item_id=item_id, external_item_id=str(body.id), name=body.name,
        description=_blank(body.description) or _blank(body.short_description),
        brand=body.brands[0].name if body.brands else None,
        category=body.categories[0].name if body.categories else None, gtin=_blank(body.global_unique_id),
        image_urls=[i.src for i in body.images], attributes=attributes, active=body.status == "publish")]
    # a variable product's variants, prices and stock arrive as separate variation deliveries
    if body.type in SELLABLE_TYPES:
        out.extend(_sellable(body, item_id, make, ctx, store_id, currency))
    return out


def product_deleted(body: p.Deleted, make: CommandFactory, ctx: MappingContext, source: str,
                    currency: str | None) -> list[CommandBase]:
    # the body is only {"id": N} (moved to trash): a tombstone with a placeholder name
    return [make(UpsertCatalogItem, item_id=ctx.resolve("item", body.id), external_item_id=str(body.id),
                 name=f"deleted WooCommerce product {body.id}", active=False)]


TRANSLATORS: dict[str, Translate] = {
    "product.created": product_upserted,  # type: ignore[dict-item]
    "product.updated": product_upserted,  # type: ignore[dict-item]
    "product.restored": product_upserted,  # type: ignore[dict-item]
    "product.published": product_upserted,  # type: ignore[dict-item]
    "product.deleted": product_deleted,  # type: ignore[dict-item]
}
