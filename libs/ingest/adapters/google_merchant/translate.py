"""Feed rows → canonical commands, in batches, with one ``RowError`` per unusable row (never an exception).

Identity: catalog item = ``item_group_id`` (else ``id``); variant = ``id``. A row without ``title`` is a
supplemental-feed row: only its price and availability are applied. Prices are major units with their
ISO code (``"15.00 USD"``) → minor units; ``sale_price`` is ``priceType`` sale. ``availability`` has no
quantity: ``out_of_stock`` is an absolute 0, the other values only set the ``available`` flag; a preorder's
or backorder's ``availability_date`` is when it is available again.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ingest.adapters.base import CommandFactory, ProductFeed
from ingest.adapters.google_merchant.feed import FeedItem, FeedRow, RowError, iter_rows
from ingest.adapters.google_merchant.payloads import (
    ITEM_ATTRIBUTES,
    VARIANT_ATTRIBUTES,
    Price,
    parse_availability,
    parse_price,
)
from ingest.canonical.commands import CommandBase, UpdatePrice, UpdateStockLevel, UpsertCatalogItem, UpsertVariant
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor


@dataclass
class FeedBatch:
    """What one batch of rows became: commands for the good rows, an error for each bad one."""

    commands: list[CommandBase] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    #: external item id → name ("" when the row did not name it) of every item a command was made for
    items: dict[str, str] = field(default_factory=dict)


def item_key(row: FeedRow) -> str:
    get = row.fields.get
    return get("item_group_id") or get("id", "")


def row_keys(rows: Iterable[FeedItem]) -> frozenset[MappingKey]:
    """The ``item`` and ``variant`` keys a batch names, for one mapping lookup per batch."""
    out: set[MappingKey] = set()
    for row in rows:
        if isinstance(row, FeedRow) and row.get("id"):
            out |= {MappingKey("item", item_key(row)), MappingKey("variant", row.get("id"))}
    return frozenset(out)


@dataclass(frozen=True)
class _Checked:
    price: Price | None
    sale: Price | None
    availability: str | None


def record_commands(row: FeedRow, make: CommandFactory, ctx: MappingContext, *, currency: str | None,
                    store_id: str | None, seen_items: set[str]) -> FeedBatch:
    """One row of an import (``ProductFeed.commands``)."""
    batch = rows_to_commands([row], make, ctx, default_currency=currency, store_id=store_id,
                             seen_items=seen_items)
    if batch.commands and row.get("id"):
        batch.items[item_key(row)] = row.get("title")
    return batch


def _check(row: FeedRow, default_currency: str | None) -> tuple[_Checked | None, list[RowError]]:
    errors: list[RowError] = []
    get = row.fields.get  # ``row.get`` is this with "" for a missing column; ~20 reads per row

    def fail(column: str, message: str, code: str) -> None:
        errors.append(RowError(row.file, row.row, column, message, code, row.line))

    external_id = get("id", "")
    if not external_id:
        fail("id", "missing id", "missing_id")
    elif len(external_id) > 50:
        fail("id", "id is longer than 50 characters", "invalid_id")
    prices: dict[str, Price | None] = {"price": None, "sale_price": None}
    for column in prices:
        if text := get(column, ""):
            try:
                prices[column] = parse_price(text, default_currency)
            except MoneyError as exc:
                fail(column, str(exc), "invalid_price")
    availability = None
    if text := get("availability", ""):
        try:
            availability = parse_availability(text)
        except ValueError as exc:
            fail("availability", str(exc), "invalid_availability")
    if errors:
        return None, errors
    return _Checked(prices["price"], prices["sale_price"], availability), []


def _images(row: FeedRow) -> list[str]:
    get = row.fields.get
    extra = [u.strip() for u in get("additional_image_link", "").split(",") if u.strip()]
    return ([get("image_link", "")] if get("image_link") else []) + extra


def _available_again_at(row: FeedRow, availability: str) -> datetime | None:
    """``availability_date`` of a preorder or backorder (``2026-02-01T09:00+0530``; the spec requires the
    offset, so a time without one, or no time at all, is not used)."""
    text = row.get("availability_date")
    if availability not in ("preorder", "backorder") or not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when.astimezone(timezone.utc) if when.tzinfo is not None else None


def _row_commands(row: FeedRow, checked: _Checked, make: CommandFactory, ctx: MappingContext,
                  store_id: str | None, seen_items: set[str]) -> list[CommandBase]:
    get = row.fields.get  # ``row.get`` is this with "" for a missing column; ~40 reads per row
    external_item, external_variant = item_key(row), get("id", "")
    item_id, variant_id = ctx.resolve("item", external_item), ctx.resolve("variant", external_variant)
    gtin = get("gtin", "").split(",")[0].strip() or None
    out: list[CommandBase] = []
    title = get("title", "")
    if title:
        if external_item not in seen_items:
            # one upsert per item group and file: the first row of the group names it
            attributes = {name: v for name in ITEM_ATTRIBUTES if (v := get(name))}
            out.append(make(UpsertCatalogItem, item_id=item_id, external_item_id=external_item,
                            name=title, description=get("description") or None, brand=get("brand") or None,
                            category=get("google_product_category") or get("product_type") or None,
                            gtin=gtin if not get("item_group_id") else None, image_urls=_images(row),
                            attributes=attributes))
        out.append(make(UpsertVariant, item_id=item_id, variant_id=variant_id, external_variant_id=external_variant,
                        name=title, gtin=gtin,
                        attributes={name: v for name in VARIANT_ATTRIBUTES if (v := get(name))}))
    for price_type, price in (("base", checked.price), ("sale", checked.sale)):
        if price is not None:
            out.append(make(UpdatePrice, item_id=item_id, external_item_id=external_item, variant_id=variant_id,
                            amount_minor=to_minor(price.amount, price.currency), currency=price.currency,
                            price_type=price_type))
    if checked.availability is not None:
        out_of_stock = checked.availability == "out_of_stock"
        out.append(make(UpdateStockLevel, store_id=store_id, item_id=item_id, external_item_id=external_item,
                        variant_id=variant_id, mode="absolute", quantity="0" if out_of_stock else None,
                        unit="each", available=checked.availability == "in_stock", reason="snapshot",
                        available_again_at=_available_again_at(row, checked.availability)))
    return out


def rows_to_commands(rows: Iterable[FeedItem], make: CommandFactory, ctx: MappingContext, *,
                     default_currency: str | None = None, store_id: str | None = None,
                     seen_items: set[str] | None = None) -> FeedBatch:
    """Commands for a batch of rows. A bad row adds ``RowError``s and no commands; the batch goes on.

    ``seen_items`` carries item groups already upserted by earlier batches of the same file.
    ``UnmappedReference`` still propagates: a missing mapping is the mapping stage's failure, not a row's.
    """
    batch = FeedBatch()
    seen = seen_items if seen_items is not None else set()
    for row in rows:
        batch.rows += 1
        if isinstance(row, RowError):
            batch.errors.append(row)
            continue
        checked, errors = _check(row, default_currency)
        if checked is None:
            batch.errors.extend(errors)
            continue
        try:
            commands = _row_commands(row, checked, make, ctx, store_id, seen)
        except (MoneyError, ValueError) as exc:  # a command that refuses the row's values (pydantic included)
            batch.errors.append(RowError(row.file, row.row, None, str(exc), "invalid_row", row.line))
            continue
        if any(c.command_type == UpsertCatalogItem.command_type for c in commands):  # models or records
            seen.add(item_key(row))
        batch.commands.extend(commands)
    return batch


#: the import route's format for google-merchant: the product data spec's files, any of TSV/CSV/XML/JSON
FEED = ProductFeed(records=iter_rows, keys=row_keys, commands=record_commands)
