"""Shopify and WooCommerce product CSV exports end to end through the running stack: upload → S3 → dedupe →
feeds stage → validator → command writer, the recorded samples' golden commands on ``catalog.commands``,
a bad row as one failure naming file, row and column, BOM/CRLF, a wrong file, and snapshot deactivation."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.feeds.helpers import SECRET, commands_of, upload, wait_import
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent / "samples"
SHOPIFY = (SAMPLES / "shopify_products_export.csv").read_bytes()
WOO = (SAMPLES / "wc-product-export.csv").read_bytes()
SITE = "https://shop.example.in"


def _tenant(stack: Stack, provider: str, options: dict[str, str] | None = None) -> str:
    tenant = new_tenant(stack, auto_create=True, currency="INR")
    stack.cli("sources", "add", tenant, provider, "--secret", SECRET,
              *(["--options", json.dumps(options)] if options else []))
    return tenant


def _shape(command: dict[str, Any]) -> tuple[Any, ...]:
    """What a command says, without the ids that depend on tenant and upload."""
    return (command["commandType"], command.get("externalItemId"), command.get("externalVariantId"),
            command.get("name"), command.get("amountMinor"), command.get("priceType"), command.get("quantity"),
            command.get("available"), command.get("active"), json.dumps(command.get("attributes"), sort_keys=True))


def _golden(name: str) -> list[tuple[Any, ...]]:
    return sorted(map(_shape, json.loads((SAMPLES / f"{name}.expected.json").read_text())), key=str)


def _failures(stack: Stack, raw_id: str, count: int) -> list[dict[str, Any]]:
    rows = stack.wait_for("SELECT class, stage, reason_code, message, details FROM failures WHERE raw_id = $1::uuid",
                          raw_id, check=lambda rs: len(rs) >= count)
    return [r | {"details": json.loads(r["details"])} for r in rows]


def _upload(stack: Stack, tenant: str, provider: str, body: bytes, filename: str, feed: str) -> str:
    status, payload = upload(stack, tenant, body, provider=provider, query=f"feed={feed}",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    assert status == 202, payload
    return str(payload["rawId"])


def test_shopify_export_becomes_the_golden_commands(stack: Stack) -> None:
    tenant = _tenant(stack, "shopify")
    raw_id = _upload(stack, tenant, "shopify", SHOPIFY, "products_export.csv", "shop")
    progress = wait_import(stack, raw_id)
    # six file rows, three products (one of them spread over four rows)
    assert (progress["rowsDone"], progress["rowsTotal"], progress["failures"], progress["commands"]) == (6, 6, 0, 18)
    mine = commands_of(stack, raw_id, 18)
    assert sorted(map(_shape, mine), key=str) == _golden("shopify_products_export")
    assert len({c["commandId"] for c in mine}) == 18


def test_shopify_export_with_bom_crlf_and_a_bad_row_is_one_failure_naming_row_and_column(stack: Stack) -> None:
    tenant = _tenant(stack, "shopify")
    body = b"\xef\xbb\xbf" + SHOPIFY.replace(b"TEE-M-NAVY,190,shopify,0,deny,manual,499.00",
                                            b"TEE-M-NAVY,190,shopify,0,deny,manual,Rs 499").replace(b"\n", b"\r\n")
    raw_id = _upload(stack, tenant, "shopify", body, "products_export.csv", "shop")
    progress = wait_import(stack, raw_id)
    # the bad variant's upsert, two prices and stock are missing; the rest of its product is there
    assert (progress["rowsTotal"], progress["failures"], progress["commands"]) == (6, 1, 14)
    mine = commands_of(stack, raw_id, 14)
    assert "sku:TEE-M-NAVY" not in {c.get("externalVariantId") for c in mine}
    tee = [c for c in mine if c["commandType"] == "UpsertCatalogItem" and c["externalItemId"] == "handle:classic-crew-tee"]
    assert "\r\n<li>180 gsm, \"pre-shrunk\"</li>" in tee[0]["description"]  # the quoted multi-line HTML, whole
    [failure] = _failures(stack, raw_id, 1)
    assert (failure["class"], failure["stage"], failure["reason_code"]) == ("validation", "feeds", "invalid_price")
    assert {k: failure["details"][k] for k in ("file", "row", "column", "line")} == {
        "file": "products_export.csv", "row": "2", "column": "Variant Price", "line": "7"}
    assert "products_export.csv: row 2 (line 7), column Variant Price" in failure["message"]


def test_google_feed_on_the_shopify_route_is_a_clear_failure_not_a_crash(stack: Stack) -> None:
    tenant = _tenant(stack, "shopify")
    raw_id = _upload(stack, tenant, "shopify", b"id,title,price,availability\nA1,Milk,28.00 INR,in_stock\n",
                     "products.csv", "shop")
    progress = wait_import(stack, raw_id)
    assert (progress["state"], progress["rowsTotal"], progress["commands"], progress["failures"]) == ("done", 0, 0, 2)
    failures = {f["reason_code"]: f for f in _failures(stack, raw_id, 2)}
    assert set(failures) == {"not_shopify_export", "empty_feed"}
    assert failures["not_shopify_export"]["details"]["row"] == "0"
    assert "not a Shopify product CSV export: no Handle column" in failures["not_shopify_export"]["message"]


def test_shopify_primary_export_deactivates_the_product_the_next_one_lacks(stack: Stack) -> None:
    tenant = _tenant(stack, "shopify")
    first = _upload(stack, tenant, "shopify", SHOPIFY, "products_export.csv", "main")
    assert wait_import(stack, first)["deactivated"] == 0
    without_gift_wrap = b"".join(line for line in SHOPIFY.splitlines(keepends=True)
                                 if not line.startswith(b"gift-wrap,"))
    second = _upload(stack, tenant, "shopify", without_gift_wrap, "products_export.csv", "main")
    assert wait_import(stack, second)["deactivated"] == 1
    off = [c for c in commands_of(stack, second, 18 - 3 + 1) if c["commandType"] == "UpsertCatalogItem"
           and not c["active"] and c["name"] == "Gift Wrap"]
    assert [c["externalItemId"] for c in off] == ["handle:gift-wrap"]


def test_woocommerce_export_becomes_the_golden_commands_with_the_store_option(stack: Stack) -> None:
    tenant = _tenant(stack, "woocommerce", {"merchant": SITE, "store": SITE})
    raw_id = _upload(stack, tenant, "woocommerce", WOO, "wc-product-export-1-1-2026.csv", "woo")
    progress = wait_import(stack, raw_id)
    assert (progress["rowsDone"], progress["rowsTotal"], progress["failures"], progress["commands"]) == (4, 4, 0, 13)
    mine = commands_of(stack, raw_id, 13)
    assert sorted(map(_shape, mine), key=str) == _golden("wc-product-export")
    # stock lands on the store the webhooks' source maps to, and every command on its merchant
    assert {c["storeId"] for c in mine if c["commandType"] == "UpdateStockLevel"} != {None}
    assert None not in {c["merchantId"] for c in mine}


def test_woocommerce_export_with_crlf_and_a_bad_price_is_one_failure_naming_row_and_column(stack: Stack) -> None:
    tenant = _tenant(stack, "woocommerce")
    lines = WOO.split(b"\n")
    row3 = next(i for i, line in enumerate(lines) if line.startswith(b"121,"))
    lines[row3] = lines[row3].replace(b",2199.00,", b',"2,199.00",', 1)  # a thousands separator
    raw_id = _upload(stack, tenant, "woocommerce", b"\r\n".join(lines), "wc-product-export.csv", "woo")
    progress = wait_import(stack, raw_id)
    # the variation's upsert, price and stock are missing; the other rows' commands are there
    assert (progress["rowsTotal"], progress["failures"], progress["commands"]) == (4, 1, 10)
    assert "121" not in {c.get("externalVariantId") for c in commands_of(stack, raw_id, 10)}
    [failure] = _failures(stack, raw_id, 1)
    assert (failure["class"], failure["reason_code"]) == ("validation", "invalid_price")
    assert {k: failure["details"][k] for k in ("file", "row", "column", "line")} == {
        "file": "wc-product-export.csv", "row": "3", "column": "Regular price", "line": "4"}
