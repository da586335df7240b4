"""Shopify product CSV exports (Shopify admin → Products → Export) streamed into products, one at a time.

A product spans consecutive rows sharing a ``Handle``: the first carries the product columns (Title, Body
(HTML), Vendor, …) and its first variant; the following rows carry only variant columns (Option values,
Variant SKU, Variant Price, …) and/or an image (Image Src, Image Position). Rows are grouped while streaming
into one ``ProductGroup`` per handle run — memory is one product, never the file — and each group becomes
the commands ``translate.product_commands`` makes for the same product's ``products/update`` webhook, plus
``UpdateStockLevel`` absolute for variants whose inventory Shopify tracks.

Identity: exports carry no numeric ids, so the item is ``handle:<Handle>`` and a variant ``sku:<Variant
SKU>`` (without a SKU: ``handle:<Handle>/<option values>``). These are not the webhooks' ids: a tenant that
also takes webhooks maps both onto one canonical item (docs/feeds.md).
Column names are the classic export's; the newer template's names (``URL handle``, ``SKU``, ``Price``, …)
are read as their classic equivalents. Header names are matched case-insensitively.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import ValidationError

from ingest.adapters.base import CommandFactory, ProductFeed, first_error
from ingest.adapters.google_merchant.feed import FeedRow, RowError, export_rows
from ingest.adapters.google_merchant.translate import FeedBatch
from ingest.adapters.shopify import payloads as p
from ingest.adapters.shopify.translate import product_commands
from ingest.canonical.commands import UpdateStockLevel
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_decimal
from ingest.canonical.units import QuantityError, quantity
from ingest.errors import UnparseablePayload

#: a product with more rows than this (Shopify allows 2,048 variants and 250 images) is not held whole
MAX_PRODUCT_ROWS = 5000
#: the newer export template's column names → the classic ones this module reads (lower case)
ALIASES = {"url handle": "handle", "description": "body (html)", "sku": "variant sku", "price": "variant price",
           "compare-at price": "variant compare at price", "inventory quantity": "variant inventory qty",
           "inventory tracker": "variant inventory tracker", "barcode": "variant barcode",
           "product image url": "image src"}
REQUIRED = {"handle": "Handle", "title": "Title"}
#: how failures name the columns (the classic export's spelling)
COLUMN = {"handle": "Handle", "title": "Title", "variant price": "Variant Price",
          "variant compare at price": "Variant Compare At Price", "variant inventory qty": "Variant Inventory Qty",
          "variant sku": "Variant SKU", "image position": "Image Position"}


@dataclass(frozen=True)
class ProductGroup:
    """The consecutive rows of one handle: the product row first, then variant and image rows."""

    handle: str
    rows: tuple[FeedRow, ...]

    @property
    def file(self) -> str:
        return self.rows[0].file

    @property
    def row(self) -> int:
        return self.rows[0].row

    @property
    def line(self) -> int | None:
        return self.rows[0].line

    @property
    def span(self) -> int:
        return len(self.rows)


def iter_records(chunks: Iterable[bytes], *, file: str = "products_export.csv", filename: str | None = None,
                 content_type: str | None = None) -> Iterator[ProductGroup | RowError]:
    """Product groups (and row errors) as they complete. A file whose header is not a Shopify product
    export's (a Google feed posted to the Shopify route, an XML file) is one ``not_shopify_export`` error."""
    handle: str | None = None
    group: list[FeedRow] = []
    for row in export_rows(chunks, file=file, required=REQUIRED, kind="Shopify product CSV export",
                           reason_code="not_shopify_export", aliases=ALIASES):
        if isinstance(row, RowError):
            yield row
            continue
        current = row.get("handle")
        if not current:
            yield row.error(COLUMN["handle"], "missing handle", "missing_handle")
            continue
        if current == handle and len(group) < MAX_PRODUCT_ROWS:
            group.append(row)
            continue
        if current == handle:
            yield row.error(None, f"product {handle!r} has more than {MAX_PRODUCT_ROWS} rows", "record_too_large")
            continue
        if group:
            yield ProductGroup(handle or "", tuple(group))
        handle, group = current, [row]
    if group:
        yield ProductGroup(handle or "", tuple(group))


def item_key(handle: str) -> str:
    return f"handle:{handle}"


def _option_values(row: FeedRow) -> list[str]:
    return [row.get(f"option{n} value") for n in (1, 2, 3) if row.get(f"option{n} value")]


def variant_key(handle: str, row: FeedRow) -> str:
    sku = row.get("variant sku")
    return f"sku:{sku}" if sku else f"{item_key(handle)}/{'/'.join(_option_values(row) or ['Default Title'])}"


def _is_variant(row: FeedRow) -> bool:
    # image-only rows carry the handle and image columns and nothing of a variant
    return bool(_option_values(row) or row.get("variant sku") or row.get("variant price"))


def record_keys(records: Sequence[ProductGroup]) -> frozenset[MappingKey]:
    out: set[MappingKey] = set()
    for group in records:
        out.add(MappingKey("item", item_key(group.handle)))
        out.update(MappingKey("variant", variant_key(group.handle, r)) for r in group.rows if _is_variant(r))
    return frozenset(out)


@dataclass(frozen=True)
class _Variant:
    row: FeedRow
    key: str
    body: p.Variant
    tracked_quantity: Decimal | None


def _variant(row: FeedRow, key: str, currency: str | None, errors: list[RowError]) -> _Variant | None:
    before = len(errors)
    for column in ("variant price", "variant compare at price"):
        if row.get(column):
            try:
                to_decimal(row.get(column))
            except MoneyError as exc:
                errors.append(row.error(COLUMN[column], str(exc), "invalid_price"))
    if row.get("variant price") and currency is None:
        errors.append(row.error(COLUMN["variant price"], "Shopify prices carry no currency and neither the source "
                                "option 'currency' nor the tenant's default_currency is set", "missing_currency"))
    tracked = None
    if row.get("variant inventory tracker").lower() == "shopify" and row.get("variant inventory qty"):
        try:
            tracked = Decimal(quantity(row.get("variant inventory qty")))
        except QuantityError as exc:
            errors.append(row.error(COLUMN["variant inventory qty"], str(exc), "invalid_quantity"))
    if len(errors) > before:
        return None
    values = {n: row.get(f"option{n} value") or None for n in (1, 2, 3)}
    body = p.Variant(id=0, title=" / ".join(_option_values(row)) or None, price=row.get("variant price") or None,
                     compare_at_price=row.get("variant compare at price") or None,
                     sku=row.get("variant sku") or None, barcode=row.get("variant barcode") or None,
                     option1=values[1], option2=values[2], option3=values[3],
                     inventory_policy=row.get("variant inventory policy") or None)
    return _Variant(row, key, body, tracked)


def _status(head: FeedRow) -> str:
    if head.get("status"):
        return head.get("status").lower()
    # exports before the Status column: Published says whether the product is live
    return "active" if head.get("published").lower() in ("", "true") else "draft"


def _images(rows: Sequence[FeedRow], errors: list[RowError]) -> list[p.Image]:
    images = []
    for row in rows:
        if not row.get("image src"):
            continue
        position = row.get("image position")
        if position and not position.isdigit():
            errors.append(row.error(COLUMN["image position"], f"not a position: {position!r}", "invalid_position"))
            continue
        images.append(p.Image(src=row.get("image src"), position=int(position) if position else None))
    return images


def record_commands(group: ProductGroup, make: CommandFactory, ctx: MappingContext, *, currency: str | None,
                    store_id: str | None, seen_items: set[str]) -> FeedBatch:
    """One product's commands; a bad variant row is a row error and the rest of the product goes on."""
    out = FeedBatch(rows=group.span)
    head = group.rows[0]
    if not head.get("title"):
        # rows of one handle must be consecutive: a later run of the same handle has no product row
        out.errors.append(head.error(COLUMN["title"], f"no Title on the first row of handle {group.handle!r} "
                                     "(the product row must come first)", "missing_title"))
        return out
    variants: list[_Variant] = []
    keys: set[str] = set()
    for row in group.rows:
        if not _is_variant(row):
            continue
        key = variant_key(group.handle, row)
        if key in keys:
            column = COLUMN["variant sku"] if row.get("variant sku") else None
            out.errors.append(row.error(column, f"a second variant {key!r} in product {group.handle!r}",
                                        "duplicate_variant"))
            continue
        keys.add(key)
        variant = _variant(row, key, currency, out.errors)
        if variant is not None:
            variants.append(variant)
    options = [p.Option(name=head.get(f"option{n} name"), position=n) for n in (1, 2, 3)
               if head.get(f"option{n} name")]
    category = p.Category(full_name=head.get("product category")) if head.get("product category") else None
    external_item = item_key(group.handle)
    try:
        # exports carry no numeric ids (id 0): product_commands takes the handle and SKU keys instead
        product = p.Product(id=0, title=head.get("title"), body_html=head.get("body (html)") or None,
                            vendor=head.get("vendor") or None, product_type=head.get("type") or None,
                            handle=group.handle, status=_status(head), tags=head.get("tags") or None,
                            variants=[v.body for v in variants], options=options,
                            images=_images(group.rows, out.errors), category=category)
        out.commands = product_commands(product, external_item, [v.key for v in variants], make, ctx, currency)
    except ValidationError as exc:  # a value the webhook's resource would not hold
        out.errors.append(head.error(None, first_error(exc), "invalid_row"))
        return out
    except UnparseablePayload as exc:  # checked per row above; anything left is the product row's
        out.errors.append(head.error(None, exc.message, exc.reason_code))
        return out
    item_id = ctx.resolve("item", external_item)
    for v in variants:
        if v.tracked_quantity is not None:
            out.commands.append(make(UpdateStockLevel, store_id=store_id, item_id=item_id,
                                     external_item_id=external_item, variant_id=ctx.resolve("variant", v.key),
                                     mode="absolute", quantity=quantity(v.tracked_quantity), unit="each",
                                     available=v.tracked_quantity > 0, reason="snapshot"))
    out.items[external_item] = head.get("title")
    seen_items.add(external_item)
    return out


#: the import route's format for shopify (``registry.FEEDS``)
FEED = ProductFeed(records=iter_records, keys=record_keys, commands=record_commands)
