"""WooCommerce product CSV exports (Products → Export, the built-in exporter) streamed row by row.

Each row is one product, and a variable product's variations are rows of ``Type`` ``variation`` whose
``Parent`` names the parent by SKU, or ``id:<ID>`` when it has none. A row becomes the commands
``translate.product_commands`` makes for the same product's ``product.updated`` webhook: identity is the
exported ``ID`` (item = ID, a variation's item = its parent's ID, variant = ID), as the webhooks use.

Values as the exporter writes them (``WC_Product_CSV_Exporter``): ``Published`` 1 / 0 / -1 = publish /
private / draft; ``In stock?`` 1 / 0 / ``backorder``; ``Stock`` a quantity when the product manages stock,
``parent`` for a variation using its parent's, else empty; lists (Categories, Tags, Images, attribute
values) comma-separated with ``\\,`` for a comma inside a value; descriptions with line breaks written as
``\\n``. Column names are the English ones (a localised site exports translated headers).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from ingest.adapters.base import CommandFactory, ProductFeed, first_error
from ingest.adapters.google_merchant.feed import FeedRow, RowError, export_rows
from ingest.adapters.google_merchant.translate import FeedBatch
from ingest.adapters.woocommerce import payloads as p
from ingest.adapters.woocommerce.translate import SELLABLE_TYPES, product_commands
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_decimal
from ingest.canonical.units import QuantityError, quantity
from ingest.errors import UnparseablePayload

REQUIRED = {"id": "ID", "type": "Type", "name": "Name"}
TYPES = frozenset({"simple", "variable", "grouped", "external", "variation"})
#: ``Published`` → the REST ``status``
STATUSES = {"1": "publish", "0": "private", "-1": "draft"}
#: ``In stock?`` → the REST ``stock_status``
STOCK_STATUSES = {"1": "instock", "0": "outofstock", "backorder": "onbackorder"}
_LIST_SPLIT = re.compile(r"(?<!\\),")
_ATTRIBUTE = re.compile(r"^attribute (\d+) name$")


@dataclass(frozen=True)
class ExportRow(FeedRow):
    """A row with its parent resolved to an ID (a variation's ``Parent`` may name the parent's SKU)."""

    parent_id: str | None = None


def iter_records(chunks: Iterable[bytes], *, file: str = "wc-product-export.csv", filename: str | None = None,
                 content_type: str | None = None) -> Iterator[ExportRow | RowError]:
    """Rows (and row errors) as they complete. Parents are found by SKU among the variable products read so
    far — the exporter writes products in ID order, so a parent precedes its variations; the map holds one
    entry per variable product, never the file. A header that is not a WooCommerce export's is one
    ``not_woocommerce_export`` error."""
    parents: dict[str, str] = {}  # SKU → ID of the variable products seen
    for item in export_rows(chunks, file=file, required=REQUIRED, kind="WooCommerce product CSV export",
                            reason_code="not_woocommerce_export"):
        if isinstance(item, RowError):
            yield item
            continue
        kind = _type(item)
        if kind == "variable" and item.get("sku") and item.get("id"):
            parents[item.get("sku")] = item.get("id")
        parent = item.get("parent")
        parent_id = parent[3:] if parent.startswith("id:") else parents.get(parent) if parent else None
        if kind == "variation" and not parent_id:
            why = f"parent SKU {parent!r} is not a variable product earlier in the file" if parent else "no Parent"
            yield item.error("Parent", why, "unknown_parent")
            continue
        yield ExportRow(item.file, item.row, item.fields, item.line, parent_id)


def _type(row: FeedRow) -> str:
    # "simple, downloadable, virtual": the product type first, then flags
    return row.get("type").split(",")[0].strip().lower()


def _ids(row: ExportRow) -> tuple[str, str | None]:
    """(external item id, external variant id or None) as the webhooks key them."""
    kind = _type(row)
    if kind == "variation":
        return row.parent_id or "", row.get("id")
    return row.get("id"), row.get("id") if kind in SELLABLE_TYPES else None


def record_keys(records: Sequence[ExportRow]) -> frozenset[MappingKey]:
    out: set[MappingKey] = set()
    for row in records:
        item, variant = _ids(row)
        if item:
            out.add(MappingKey("item", item))
        if variant:
            out.add(MappingKey("variant", variant))
    return frozenset(out)


def _values(text: str) -> list[str]:
    return [v.strip().replace("\\,", ",") for v in _LIST_SPLIT.split(text) if v.strip()]


def _description(text: str) -> str | None:
    # the exporter writes a line break as \n and a literal \n as \\n
    return "\\n".join(part.replace("\\n", "\n") for part in text.split("\\\\n")) or None


def _terms(text: str, *, leaf: bool = False) -> list[p.Term]:
    # a category is its path ("Clothing > Tshirts"); the REST resource names the term itself
    return [p.Term(name=v.rsplit(">", 1)[-1].strip() if leaf else v) for v in _values(text)]


def _attributes(row: FeedRow, variation: bool) -> list[p.Attribute]:
    out = []
    for column in row.fields:
        m = _ATTRIBUTE.match(column)
        if m is None or not row.get(column):
            continue
        values = row.get(f"attribute {m.group(1)} value(s)")
        out.append(p.Attribute(name=row.get(column), option=values or None) if variation
                   else p.Attribute(name=row.get(column), options=_values(values)))
    return out


def _check(row: ExportRow, currency: str | None) -> list[RowError]:
    errors = []
    if not row.get("id").isdigit():
        errors.append(row.error("ID", f"not a product ID: {row.get('id')!r}", "invalid_id"))
    if _type(row) not in TYPES:
        errors.append(row.error("Type", f"unknown product type {row.get('type')!r}", "invalid_type"))
    elif _type(row) == "variation" and not (row.parent_id or "").isdigit():
        errors.append(row.error("Parent", f"not a parent: {row.get('parent')!r}", "unknown_parent"))
    if row.get("published") not in STATUSES:
        errors.append(row.error("Published", f"expected 1, 0 or -1, not {row.get('published')!r}",
                                "invalid_status"))
    if row.get("in stock?") and row.get("in stock?").lower() not in STOCK_STATUSES:
        errors.append(row.error("In stock?", f"expected 1, 0 or backorder, not {row.get('in stock?')!r}",
                                "invalid_stock_status"))
    if row.get("stock") and row.get("stock") != "parent":
        try:
            quantity(row.get("stock"))
        except QuantityError as exc:
            errors.append(row.error("Stock", str(exc), "invalid_quantity"))
    for column, name in (("regular price", "Regular price"), ("sale price", "Sale price")):
        if row.get(column):
            try:
                to_decimal(row.get(column))
            except MoneyError as exc:
                errors.append(row.error(name, str(exc), "invalid_price"))
            if currency is None:
                errors.append(row.error(name, "WooCommerce prices carry no currency and neither the source option "
                                        "'currency' nor the tenant's default_currency is set", "missing_currency"))
    return errors


def product_of(row: ExportRow) -> p.Product:
    """The row as the REST resource a webhook would carry (what ``translate`` reads)."""
    kind = _type(row)
    stock = row.get("stock")
    return p.Product(
        id=int(row.get("id")), name=row.get("name"), type=kind, status=STATUSES[row.get("published")],
        parent_id=int(row.parent_id) if kind == "variation" and row.parent_id else 0,
        description=_description(row.get("description")),
        short_description=_description(row.get("short description")), sku=row.get("sku") or None,
        global_unique_id=row.get("gtin, upc, ean, or isbn") or None,
        regular_price=row.get("regular price") or None, sale_price=row.get("sale price") or None,
        manage_stock="parent" if stock == "parent" else bool(stock),
        stock_quantity=quantity(stock) if stock and stock != "parent" else None,
        stock_status=STOCK_STATUSES.get(row.get("in stock?").lower()),
        categories=_terms(row.get("categories"), leaf=True), brands=_terms(row.get("brands")),
        tags=_terms(row.get("tags")), images=[p.Image(src=u) for u in _values(row.get("images"))],
        attributes=_attributes(row, kind == "variation"))


def record_commands(row: ExportRow, make: CommandFactory, ctx: MappingContext, *, currency: str | None,
                    store_id: str | None, seen_items: set[str]) -> FeedBatch:
    """One row's commands, or its row errors (each naming the column)."""
    out = FeedBatch(rows=1)
    out.errors = _check(row, currency)
    if out.errors:
        return out
    try:
        body = product_of(row)
        out.commands = product_commands(body, make, ctx, store_id, currency)
    except ValidationError as exc:  # a value the REST resource would not hold
        out.errors.append(row.error(None, first_error(exc), "invalid_row"))
        return out
    except UnparseablePayload as exc:  # checked per column above; anything left is the row's
        out.errors.append(row.error(None, exc.message, exc.reason_code))
        return out
    if body.type != "variation":
        out.items[str(body.id)] = body.name
        seen_items.add(str(body.id))
    return out


#: the import route's format for woocommerce (``registry.FEEDS``)
FEED = ProductFeed(records=iter_records, keys=record_keys, commands=record_commands)
