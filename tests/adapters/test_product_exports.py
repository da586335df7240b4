"""Shopify and WooCommerce product CSV exports: grouping, golden commands, the webhook's commands for the same
product, row errors naming row and column, wrong files, awkward bytes, bounded memory."""
from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.adapters.base import CommandFactory, Headers, RawDelivery, SourceEvent
from ingest.adapters.google_merchant.feed import RowError
from ingest.adapters.registry import product_feed
from ingest.adapters.shopify import payloads as shopify_payloads
from ingest.adapters.shopify import translate as shopify_translate
from ingest.adapters.shopify.feed import ProductGroup
from ingest.adapters.woocommerce import payloads as woo_payloads
from ingest.adapters.woocommerce import translate as woo_translate
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey, TenantSettings, auto_canonical_id
from ingest.feeds import RowCommandFactory
from tests.adapters.cases import RAW_ID, RECEIVED_AT, TENANT

SAMPLES = Path(__file__).parent.parent / "feeds" / "samples"
SHOPIFY = SAMPLES / "shopify_products_export.csv"
WOO = SAMPLES / "wc-product-export.csv"
SITE = "https://shop.example.in"


def _records(provider: str, data: bytes, chunk: int = 0) -> list[Any]:
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    return list(product_feed(provider).records(chunks, file="export.csv"))


def _context(provider: str, keys: frozenset[MappingKey]) -> MappingContext:
    return MappingContext(TENANT, provider, {k: auto_canonical_id(TENANT, provider, k) for k in keys},
                          TenantSettings(TENANT, default_currency="INR"))


def _translate(provider: str, records: list[Any], *, currency: str | None = "INR", store: str | None = None
               ) -> tuple[list[CommandBase], list[RowError], dict[str, str]]:
    """Records → (commands, row errors, items) the way the feeds stage does it, one record at a time."""
    feed = product_feed(provider)
    good = [r for r in records if not isinstance(r, RowError)]
    keys = feed.keys(good) | ({MappingKey("store", store)} if store else frozenset())
    ctx = _context(provider, keys)
    raw = RawDelivery(b"", Headers({}), RAW_ID, TENANT, provider, "import", RECEIVED_AT)
    make = RowCommandFactory(SourceEvent(event_type="feed", delivery=raw), ctx)
    commands: list[CommandBase] = []
    errors = [r for r in records if isinstance(r, RowError)]
    items: dict[str, str] = {}
    for record in good:
        make.at_row(record.row)
        batch = feed.commands(record, make, ctx, currency=currency,
                              store_id=ctx.resolve("store", store) if store else None, seen_items=set())
        commands += batch.commands
        errors += batch.errors
        items |= batch.items
    return commands, errors, items


def _dump(commands: list[CommandBase]) -> list[dict[str, Any]]:
    return [json.loads(c.model_dump_json(by_alias=True)) | {"commandType": c.command_type} for c in commands]


def _golden(name: str, got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    path = SAMPLES / f"{name}.expected.json"
    if os.environ.get("UPDATE_EXPECTED"):
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _without_ids(commands: list[CommandBase]) -> list[dict[str, Any]]:
    """What must match between a webhook and an export of the same product: everything but ids."""
    drop = {"commandId", "itemId", "variantId", "externalItemId", "externalVariantId", "storeId", "merchantId",
            "occurredAt", "rawId"}
    return [{k: v for k, v in c.items() if k not in drop} for c in _dump(commands)]


def _errors(errors: list[RowError]) -> list[tuple[int, str | None, str]]:
    return [(e.row, e.column, e.reason_code) for e in errors]


# --- Shopify ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [0, 1, 7, 4096])
def test_given_shopify_export_in_any_chunking_then_one_record_per_handle_and_golden_commands(chunk: int) -> None:
    records = _records("shopify", SHOPIFY.read_bytes(), chunk)
    assert [(r.handle, r.row, r.span) for r in records] == [("classic-crew-tee", 1, 4), ("gift-wrap", 5, 1),
                                                            ("monsoon-umbrella", 6, 1)]
    commands, errors, items = _translate("shopify", records)
    assert errors == []
    assert items == {"handle:classic-crew-tee": "Classic Crew Tee", "handle:gift-wrap": "Gift Wrap",
                     "handle:monsoon-umbrella": "Monsoon Umbrella, Large"}
    got = _dump(commands)
    assert got == _golden("shopify_products_export", got)


def test_given_shopify_export_then_images_of_extra_rows_draft_status_and_tracked_stock() -> None:
    commands, _, _ = _translate("shopify", _records("shopify", SHOPIFY.read_bytes()))
    items = {c.external_item_id: c for c in commands if c.command_type == "UpsertCatalogItem"}  # type: ignore[attr-defined]
    tee = items["handle:classic-crew-tee"]
    assert [u.split("/")[-1].split("?")[0] for u in tee.image_urls] == [  # type: ignore[attr-defined]
        "tee-navy-front.jpg", "tee-navy-back.jpg", "tee-white-front.jpg"]
    assert "\n<li>180 gsm, \"pre-shrunk\"</li>\n" in (tee.description or "")  # type: ignore[attr-defined]
    assert (items["handle:monsoon-umbrella"].active, items["handle:gift-wrap"].active) == (False, True)  # type: ignore[attr-defined]
    variants = [c for c in commands if c.command_type == "UpsertVariant"]
    assert [v.external_variant_id for v in variants] == ["sku:TEE-S-NAVY", "sku:TEE-M-NAVY", "sku:TEE-L-WHITE",  # type: ignore[attr-defined]
                                                         "sku:GIFT-WRAP", "sku:UMB-L-BLK"]
    assert variants[3].attributes == {"sku": "GIFT-WRAP", "inventoryPolicy": "deny"}  # type: ignore[attr-defined]
    # only variants whose inventory Shopify tracks have a quantity: TEE-L-WHITE and GIFT-WRAP do not
    stock = [(c.variant_id, c.quantity, c.available) for c in commands if c.command_type == "UpdateStockLevel"]  # type: ignore[attr-defined]
    ids = {v.variant_id: v.external_variant_id for v in variants}  # type: ignore[attr-defined]
    assert [(ids[v], q, a) for v, q, a in stock] == [("sku:TEE-S-NAVY", "12", True), ("sku:TEE-M-NAVY", "0", False),
                                                     ("sku:UMB-L-BLK", "5", True)]


def test_given_same_product_as_webhook_and_export_then_same_commands_but_ids() -> None:
    records = _records("shopify", SHOPIFY.read_bytes())
    exported, _, _ = _translate("shopify", records[:1])
    exported = [c for c in exported if c.command_type != "UpdateStockLevel"]  # webhooks carry stock separately
    cdn = "https://cdn.shopify.com/s/files/1/0612/3456/7890/files/"
    # the products/update body Shopify sends for the same product (numeric ids of its own)
    body = shopify_payloads.Product.model_validate({
        "id": 7001, "title": "Classic Crew Tee", "handle": "classic-crew-tee", "status": "active",
        "body_html": '<p>Soft, combed cotton tee.</p>\n<ul>\n<li>180 gsm, "pre-shrunk"</li>\n<li>Regular fit</li>\n'
                     "</ul>",
        "vendor": "Northwind Apparel", "product_type": "T-Shirts", "tags": "cotton, summer",
        "category": {"name": "Shirts & Tops", "full_name": "Apparel & Accessories > Clothing > Shirts & Tops"},
        "options": [{"name": "Size", "position": 1}, {"name": "Color", "position": 2}],
        "images": [{"src": cdn + "tee-navy-back.jpg?v=1717000002", "position": 2},
                   {"src": cdn + "tee-navy-front.jpg?v=1717000001", "position": 1},
                   {"src": cdn + "tee-white-front.jpg?v=1717000003", "position": 3}],
        "variants": [
            {"id": 9001, "title": "S / Navy", "price": "499.00", "compare_at_price": "599.00", "sku": "TEE-S-NAVY",
             "barcode": "8901234567001", "option1": "S", "option2": "Navy", "inventory_policy": "deny"},
            {"id": 9002, "title": "M / Navy", "price": "499.00", "compare_at_price": "599.00", "sku": "TEE-M-NAVY",
             "barcode": "8901234567002", "option1": "M", "option2": "Navy", "inventory_policy": "deny"},
            {"id": 9003, "title": "L / White", "price": "549.00", "compare_at_price": None, "sku": "TEE-L-WHITE",
             "barcode": "", "option1": "L", "option2": "White", "inventory_policy": "continue"}]})
    ctx = _context("shopify", shopify_translate.keys("products/update", body, None))
    raw = RawDelivery(b"", Headers({}), RAW_ID, TENANT, "shopify", "catalog", RECEIVED_AT)
    webhook = shopify_translate.product_upserted(body, CommandFactory(SourceEvent(event_type="products/update",
                                                                                  delivery=raw), ctx), ctx, "INR")
    assert _without_ids(exported) == _without_ids(webhook)


def _shopify_with(replace: dict[str, str]) -> bytes:
    text = SHOPIFY.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text.encode()


def test_given_bad_variant_row_then_error_names_row_and_column_and_the_product_goes_on() -> None:
    data = _shopify_with({"TEE-M-NAVY,190,shopify,0,deny,manual,499.00": "TEE-M-NAVY,190,shopify,0,deny,manual,4.99.0",
                          "UMB-L-BLK,450,shopify,5": "UMB-L-BLK,450,shopify,five"})
    commands, errors, items = _translate("shopify", _records("shopify", data))
    assert _errors(errors) == [(2, "Variant Price", "invalid_price"), (6, "Variant Inventory Qty", "invalid_quantity")]
    assert "export.csv: row 2 (line 7), column Variant Price" in str(errors[0])  # the product row spans 5 lines
    variants = [c.external_variant_id for c in commands if c.command_type == "UpsertVariant"]  # type: ignore[attr-defined]
    assert variants == ["sku:TEE-S-NAVY", "sku:TEE-L-WHITE", "sku:GIFT-WRAP"]
    assert set(items) == {"handle:classic-crew-tee", "handle:gift-wrap", "handle:monsoon-umbrella"}


def test_given_no_currency_then_each_priced_variant_row_fails_naming_the_column() -> None:
    _, errors, _ = _translate("shopify", _records("shopify", SHOPIFY.read_bytes()), currency=None)
    assert {(e.column, e.reason_code) for e in errors} == {("Variant Price", "missing_currency")}
    assert sorted(e.row for e in errors) == [1, 2, 3, 5, 6]


@pytest.mark.parametrize("data", [
    b"id,title,price\nA1,Milk,28.00 INR\nA2,Curd,30.00 INR\n",
    b'<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>A1</g:id></item>'
    b'</channel></rss>',
], ids=["google-csv", "xml"])
def test_given_a_file_that_is_no_shopify_export_then_one_clear_error_and_nothing_else(data: bytes) -> None:
    records = _records("shopify", data)
    assert _errors(records) == [(0, None, "not_shopify_export")]
    assert "not a Shopify product CSV export: no Handle" in str(records[0])


def test_given_bom_and_crlf_then_same_records_and_commands() -> None:
    plain = SHOPIFY.read_bytes()
    variant = b"\xef\xbb\xbf" + plain.replace(b"\n", b"\r\n")
    a, b = _translate("shopify", _records("shopify", plain)), _translate("shopify", _records("shopify", variant, 5))
    assert _dump(a[0]) != [] and _without_ids(a[0]) == [
        {**c, "description": c["description"].replace("\r\n", "\n")} if c.get("description") else c
        for c in _without_ids(b[0])]


def test_given_a_handle_split_over_two_runs_then_the_second_run_is_an_error() -> None:
    head = SHOPIFY.read_text().split("\n", 1)[0]
    data = (head + "\n" + ",".join(["tee", "Tee"] + [""] * 18 + ["10.00"] + [""] * 24) + "\n"
            + ",".join(["mug", "Mug"] + [""] * 18 + ["5.00"] + [""] * 24) + "\n"
            + ",".join(["tee", ""] + [""] * 7 + ["XL"] + [""] * 10 + ["11.00"] + [""] * 24) + "\n").encode()
    commands, errors, _ = _translate("shopify", _records("shopify", data))
    assert _errors(errors) == [(3, "Title", "missing_title")]
    assert len([c for c in commands if c.command_type == "UpsertCatalogItem"]) == 2


def test_given_the_newer_template_column_names_then_read_as_the_classic_ones() -> None:
    data = (b"URL handle,Title,Option1 name,Option1 value,SKU,Price,Compare-at price,Inventory tracker,"
            b"Inventory quantity,Status\n"
            b"oat-milk,Oat Milk,Size,1 L,OAT-1L,199.00,249.00,shopify,30,active\n"
            b"oat-milk,,,250 ml,OAT-250,59.00,,shopify,0,\n")
    commands, errors, _ = _translate("shopify", _records("shopify", data))
    assert errors == []
    assert [(c.command_type, getattr(c, "external_variant_id", None) or getattr(c, "amount_minor", None)
             or getattr(c, "quantity", None)) for c in commands] == [
        ("UpsertCatalogItem", None), ("UpsertVariant", "sku:OAT-1L"), ("UpdatePrice", 24900), ("UpdatePrice", 19900),
        ("UpsertVariant", "sku:OAT-250"), ("UpdatePrice", 5900), ("UpdateStockLevel", "30"),
        ("UpdateStockLevel", "0")]


def _shopify_line(**values: str) -> str:
    """One export row: ``values`` by classic column name (spaces as underscores), the rest empty."""
    header = SHOPIFY.read_text().split("\n", 1)[0].split(",")
    cells = {name.replace(" ", "_"): "" for name in header} | values
    return ",".join(f'"{v}"' if "," in v or "\n" in v else v for v in cells.values()) + "\n"


def _big_shopify_export(total: int) -> Iterator[bytes]:
    yield SHOPIFY.read_text().split("\n", 1)[0].encode() + b"\n"
    produced, n = 0, 0
    while produced < total:
        lines = []
        for _ in range(200):
            n += 1
            lines.append(_shopify_line(Handle=f"p-{n}", Title=f"Product {n}, cotton", Option1_Name="Size",
                                       Option1_Value="S", Variant_SKU=f"SKU-{n}-S", Variant_Price=f"{n % 900}.00",
                                       **{"Body_(HTML)": "<p>line one</p>\n<p>line two</p>"}))
            lines.append(_shopify_line(Handle=f"p-{n}", Option1_Value="M", Variant_SKU=f"SKU-{n}-M",
                                       Variant_Price="10.00", Image_Src=f"https://cdn.example/p{n}.jpg"))
        chunk = "".join(lines).encode()
        produced += len(chunk)
        yield chunk


def test_given_big_shopify_export_when_streamed_then_peak_memory_stays_far_below_file_size() -> None:
    total = 6 * 1024 * 1024  # tracemalloc slows parsing ~10×: 6 MB keeps the suite quick
    tracemalloc.start()
    try:
        count, last = 0, None
        for record in product_feed("shopify").records(_big_shopify_export(total), file="big.csv"):
            assert isinstance(record, ProductGroup), record
            assert record.span == 2
            count, last = count + 1, record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last is not None and last.handle == f"p-{count}" and count > total // 500
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


# --- WooCommerce --------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [0, 1, 7, 4096])
def test_given_woocommerce_export_in_any_chunking_then_golden_commands(chunk: int) -> None:
    records = _records("woocommerce", WOO.read_bytes(), chunk)
    assert [(r.get("id"), r.parent_id) for r in records] == [("101", None), ("120", None), ("121", "120"),
                                                             ("122", "120")]
    commands, errors, items = _translate("woocommerce", records, store=SITE)
    assert errors == []
    assert items == {"101": "Steel Kettle 1.5 L", "120": "Fleece Hoodie"}
    got = _dump(commands)
    assert got == _golden("wc-product-export", got)


def _woo_webhook(body: dict[str, Any]) -> list[CommandBase]:
    product = woo_payloads.Product.model_validate(body)
    ctx = _context("woocommerce", woo_translate.keys(product, SITE))
    raw = RawDelivery(b"", Headers({}), RAW_ID, TENANT, "woocommerce", "catalog", RECEIVED_AT)
    make = CommandFactory(SourceEvent(event_type="product.updated", delivery=raw), ctx,
                          merchant_id=ctx.resolve("merchant", SITE))
    return woo_translate.product_upserted(product, make, ctx, SITE, "INR")


def test_given_same_products_as_webhooks_and_export_then_same_commands_and_same_ids() -> None:
    records = _records("woocommerce", WOO.read_bytes())
    # the simple product and the second variation (SKU-less, parent as id:120, out of stock, on sale)
    exported, _, _ = _translate("woocommerce", [records[0], records[3]], store=SITE)
    up = "https://shop.example.in/wp-content/uploads/2026/01/"
    webhooks = _woo_webhook({
        "id": 101, "name": "Steel Kettle 1.5 L", "type": "simple", "status": "publish", "sku": "KETTLE-15",
        "global_unique_id": "8906012345678", "short_description": "Stainless steel, whistling.",
        "description": '<p>Food-grade steel, "cool-touch" handle.</p>\n<p>Works on gas and induction.</p>',
        "regular_price": "1499.00", "sale_price": "1199", "price": "1199", "manage_stock": True,
        "stock_quantity": 24, "stock_status": "instock", "categories": [{"id": 15, "name": "Cookware"},
                                                                          {"id": 9, "name": "Home"}],
        "brands": [{"id": 3, "name": "Hearth & Co"}], "tags": [{"name": "steel"}, {"name": "kettle"}],
        "images": [{"src": up + "kettle-1.jpg"}, {"src": up + "kettle-2.jpg"}], "attributes": []})
    webhooks += _woo_webhook({
        "id": 122, "parent_id": 120, "name": "Fleece Hoodie - L, Grey", "type": "variation", "status": "publish",
        "sku": "", "regular_price": "2199.00", "sale_price": "1999", "manage_stock": False,
        "stock_quantity": None, "stock_status": "outofstock",
        "attributes": [{"name": "Size", "option": "L"}, {"name": "Color", "option": "Grey"}]})
    strip = ("commandId", "merchantId")  # exports carry no site URL: the merchant is the source option
    assert [{k: v for k, v in c.items() if k not in strip} for c in _dump(exported)] == \
        [{k: v for k, v in c.items() if k not in strip} for c in _dump(webhooks)]


def _woo_rows(*rows: str) -> bytes:
    return ('\ufeffID,Type,SKU,Name,Published,"In stock?",Stock,"Sale price","Regular price",Parent,Description,'
            '"Attribute 1 name","Attribute 1 value(s)"\n' + "".join(r + "\n" for r in rows)).encode()


def test_given_bad_woocommerce_values_then_errors_name_row_and_column_and_the_rest_translates() -> None:
    data = _woo_rows("10,simple,A,Apple,1,1,5,,12.50,,,,",
                     "11,simple,B,Banana,yes,1,5,,12.50,,,,",
                     "12,simple,C,Cherry,1,1,lots,,12.50,,,,",
                     "13,simple,D,Date,1,maybe,5,,1O.00,,,,",
                     "14,variation,E,Elder - S,1,1,2,,3.00,NOPE,,Size,S",
                     "15,simple,F,Fig,-1,0,,,8.00,,,,",
                     "16,variation,G,Grape - S,1,1,2,,3.00,id:x,,Size,S")
    commands, errors, items = _translate("woocommerce", _records("woocommerce", data))
    assert _errors(errors) == [(5, "Parent", "unknown_parent"), (2, "Published", "invalid_status"),
                               (3, "Stock", "invalid_quantity"), (4, "In stock?", "invalid_stock_status"),
                               (4, "Regular price", "invalid_price"), (7, "Parent", "unknown_parent")]
    assert set(items) == {"10", "15"}
    fig = [c for c in commands if c.command_type == "UpsertCatalogItem" and c.external_item_id == "15"][0]  # type: ignore[attr-defined]
    assert fig.active is False and fig.attributes["status"] == "draft"  # type: ignore[attr-defined]


def test_given_variations_then_parent_by_sku_or_id_and_escaped_descriptions() -> None:
    data = _woo_rows("20,variable,TEE,Tee,1,1,,,,,first\\nsecond \\\\n literal,Size,\"S, M\"",
                     "21,variation,TEE-S,Tee - S,1,1,parent,,9.00,TEE,,Size,S",
                     "22,variation,,Tee - M,1,0,,,9.00,id:20,,Size,M",
                     '23,simple,MUG,Mug,1,1,4,,3.00,,"real\nline break",,')
    records = _records("woocommerce", data, 3)
    assert [(r.row, r.parent_id) for r in records] == [(1, None), (2, "20"), (3, "20"), (4, None)]
    commands, errors, _ = _translate("woocommerce", records)
    assert errors == []
    descriptions = [c.description for c in commands if c.command_type == "UpsertCatalogItem"]  # type: ignore[attr-defined]
    assert descriptions == ["first\nsecond \\n literal", "real\nline break"]
    # a variation on its parent's stock has no quantity of its own: only the in-stock flag
    stock = [(c.quantity, c.available) for c in commands if c.command_type == "UpdateStockLevel"]  # type: ignore[attr-defined]
    assert stock == [(None, True), (None, False), ("4", True)]


def test_given_a_shopify_export_to_the_woocommerce_route_then_one_clear_error() -> None:
    records = _records("woocommerce", SHOPIFY.read_bytes())
    assert _errors(records) == [(0, None, "not_woocommerce_export")]
    assert "not a WooCommerce product CSV export: no ID, Name column" in str(records[0])
