"""Feed imports end to end through the running stack: each format, bad rows, BOM/CRLF/quoting, deactivation,
progress, auth — upload → S3 → dedupe → feeds stage (the validator's rules per row) → command writer."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.feeds.helpers import SECRET, commands_of, upload, wait_import
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e

ROW_TYPES = ["UpsertCatalogItem", "UpsertVariant", "UpdatePrice", "UpdateStockLevel"]

FEEDS: dict[str, tuple[str, str, bytes]] = {
    # BOM, CRLF line ends, a quoted comma, a quoted line break, and row 2 with a bad price
    "csv": ("products.csv", "text/csv",
            b'\xef\xbb\xbfid,title,description,price,availability\r\n'
            b'C1,"Widget, large","Two\r\nlines",10.00 USD,in_stock\r\n'
            b'C2,Gadget,plain,ten dollars,in_stock\r\n'
            b'C3,"Say ""hi""",x,3.50 USD,out_of_stock\r\n'),
    "tsv": ("products.tsv", "text/tab-separated-values",
            b'\xef\xbb\xbfid\ttitle\tprice\tavailability\r\n'
            b'T1\t"Tab\there"\t1.00 USD\tin stock\r\n'
            b'T2\tBad\t1.00 USD\tsometimes\r\n'
            b'T3\tPlain, with comma\t2.00 USD\tin_stock\r\n'),
    "xml": ("products.xml", "application/xml",
            b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            b'<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>Shop</title>\r\n'
            b'<item><g:id>X1</g:id><title>Xylophone</title><g:price>5.00 USD</g:price>'
            b'<g:availability>in stock</g:availability></item>\r\n'
            b'<item><g:id>X2</g:id><title>Broken</title><g:price>-</g:price></item>\r\n'
            b'<item><g:id>X3</g:id><title>Xenon &amp; Co</title><g:price>USD 7.25</g:price>'
            b'<g:availability>out_of_stock</g:availability></item>\r\n'
            b'</channel></rss>\r\n'),
    "json": ("products.json", "application/json",
             json.dumps([{"id": "J1", "title": "Jar, glass", "price": "4.00 USD", "availability": "in_stock"},
                         {"id": "J2", "title": "Jug", "price": "4.00 XXY", "availability": "in_stock"},
                         {"offerId": "J3", "title": "Jam", "price": {"amountMicros": "2500000",
                                                                    "currencyCode": "USD"},
                          "availability": "OUT_OF_STOCK"}]).encode()),
}
EXPECTED = {"csv": ("C", "Widget, large", 2, "price"), "tsv": ("T", "Tab\there", 2, "availability"),
            "xml": ("X", "Xenon & Co", 2, "price"), "json": ("J", "Jar, glass", 2, "price")}


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    return tenant


@pytest.mark.parametrize("fmt", list(FEEDS))
def test_each_format_bad_row_is_one_failure_the_rest_are_commands(stack: Stack, tenant: str, fmt: str) -> None:
    filename, content_type, body = FEEDS[fmt]
    # a feed name per format: each is its own snapshot (else each would try to deactivate the previous one's)
    status, payload = upload(stack, tenant, body, content_type=content_type, query=f"feed={fmt}",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    assert status == 202, payload
    raw_id = payload["rawId"]
    prefix, quoted_title, bad_row, bad_column = EXPECTED[fmt]

    progress = wait_import(stack, raw_id)
    assert (progress["rowsDone"], progress["rowsTotal"], progress["failures"]) == (3, 3, 1), \
        stack.query("SELECT * FROM failures WHERE raw_id = $1::uuid", raw_id)
    assert progress["commands"] == 8

    mine = commands_of(stack, raw_id, 8)
    assert sorted(c["commandType"] for c in mine) == sorted(ROW_TYPES * 2)
    assert {c["externalItemId"] for c in mine if c["commandType"] == "UpsertCatalogItem"} == {f"{prefix}1",
                                                                                           f"{prefix}3"}
    names = {c["name"] for c in mine if c["commandType"] == "UpsertCatalogItem"}
    assert quoted_title in names  # separators and quotes inside a quoted field survive
    assert len({c["commandId"] for c in mine}) == 8

    failures = stack.wait_for("SELECT class, stage, reason_code, message, details FROM failures "
                              "WHERE raw_id = $1::uuid", raw_id)
    assert len(failures) == 1, failures
    failure = failures[0]
    details = json.loads(failure["details"])
    assert (failure["class"], failure["stage"]) == ("validation", "feeds")
    assert (details["file"], details["row"], details["column"]) == (filename, str(bad_row), bad_column)
    assert filename in failure["message"] and f"row {bad_row}" in failure["message"]


def _two_rows_one_failure(stack: Stack, tenant: str, body: bytes, name: str) -> tuple[str, dict[str, Any]]:
    """Upload a two-row feed named ``name`` whose second row fails: (rawId, its failure row, details parsed)."""
    status, payload = upload(stack, tenant, body, query=f"feed={name.split('.')[0]}", headers={"X-Feed-Name": name})
    assert status == 202
    progress = wait_import(stack, payload["rawId"])
    assert (progress["rowsTotal"], progress["failures"]) == (2, 1)
    row = stack.wait_for("SELECT class, stage, reason_code, details FROM failures WHERE raw_id = $1::uuid",
                         payload["rawId"])[0]
    return payload["rawId"], {**row, "details": json.loads(row["details"])}


def test_csv_quoted_line_break_keeps_its_row_numbers(stack: Stack, tenant: str) -> None:
    body = (b'id,title,description,price\n'
            b'Q1,One,"first\nsecond\nthird",1.00 USD\n'
            b'Q2,Two,,zero\n')
    _, row = _two_rows_one_failure(stack, tenant, body, "multi.csv")
    details = row["details"]
    # record 2 starts on physical line 5: the quoted line breaks of record 1 are not records
    assert (details["file"], details["row"], details["column"], details["line"]) == ("multi.csv", "2", "price", "5")


def test_primary_feed_deactivates_missing_items_supplemental_does_not(stack: Stack) -> None:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    first = b"id,title,price\nD1,One,1.00 USD\nD2,Two,2.00 USD\nD3,Three,3.00 USD\nD4,Four,4.00 USD\n"
    status, one = upload(stack, tenant, first, query="feed=main")
    assert status == 202
    assert wait_import(stack, one["rawId"])["deactivated"] == 0  # the first snapshot has nothing to diff

    status, extra = upload(stack, tenant, b"id,price\nD1,1.50 USD\n", query="feed=main&mode=supplemental")
    assert status == 202
    done = wait_import(stack, extra["rawId"])
    assert (done["mode"], done["deactivated"]) == ("supplemental", 0)

    status, two = upload(stack, tenant, b"id,title,price\nD1,One,1.00 USD\nD2,Two,2.00 USD\nD4,Four,4.00 USD\n",
                         query="feed=main")
    assert status == 202
    progress = wait_import(stack, two["rawId"])
    assert progress["deactivated"] == 1
    mine = commands_of(stack, two["rawId"], 3 * 3 + 1)
    off = [c for c in mine if c["commandType"] == "UpsertCatalogItem" and not c["active"]]
    assert [(c["externalItemId"], c["name"]) for c in off] == [("D3", "Three")]
    first_ids = {c["itemId"] for c in commands_of(stack, one["rawId"], 12) if c.get("externalItemId") == "D3"}
    assert {off[0]["itemId"]} == first_ids  # the same canonical item the first import created

    # a third snapshot diffs against the second (not the first): D3 is not deactivated again
    status, three = upload(stack, tenant, b"id,title,price\nD1,One,1.00 USD\nD2,Two,2.00 USD\n", query="feed=main")
    assert status == 202
    assert wait_import(stack, three["rawId"])["deactivated"] == 1
    off = [c for c in commands_of(stack, three["rawId"], 2 * 3 + 1) if c["commandType"] == "UpsertCatalogItem"
           and not c["active"]]
    assert [c["externalItemId"] for c in off] == ["D4"]


def test_truncated_or_mostly_empty_primary_feed_deactivates_nothing(stack: Stack) -> None:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    full = b"id,title,price\n" + b"".join(b"M%d,Item %d,1.00 USD\n" % (i, i) for i in range(10))
    status, one = upload(stack, tenant, full, query="feed=guarded")
    assert status == 202
    wait_import(stack, one["rawId"])
    status, two = upload(stack, tenant, b"id,title,price\nM1,Item 1,1.00 USD\n", query="feed=guarded")
    assert status == 202
    progress = wait_import(stack, two["rawId"])
    assert progress["deactivated"] == 0 and "deactivation refused" in (progress["error"] or "")
    rows = stack.wait_for("SELECT reason_code FROM failures WHERE raw_id = $1::uuid", two["rawId"])
    assert [r["reason_code"] for r in rows] == ["deactivation_refused"]

    xml = (b'<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>M1</g:id><title>Item 1</title>'
           b'<g:price>1.00 USD</g:price></item><item><g:id>M2</g:id><title>Cut')
    status, three = upload(stack, tenant, xml, content_type="application/xml", query="feed=guarded")
    assert status == 202
    progress = wait_import(stack, three["rawId"])
    assert progress["deactivated"] == 0 and "ended early" in (progress["error"] or "")
    rows = stack.wait_for("SELECT reason_code, details FROM failures WHERE raw_id = $1::uuid", three["rawId"])
    assert [r["reason_code"] for r in rows] == ["malformed_xml"]


def test_progress_in_cli_list_and_a_feed_without_usable_rows(stack: Stack, tenant: str) -> None:
    status, payload = upload(stack, tenant, b"id,title,price\n,No id,1.00 USD\n", query="feed=broken")
    assert status == 202
    progress = wait_import(stack, payload["rawId"])
    assert (progress["rowsDone"], progress["commands"], progress["failures"]) == (1, 0, 2)
    reasons = stack.wait_for("SELECT reason_code FROM failures WHERE raw_id = $1::uuid", payload["rawId"],
                             check=lambda rs: len(rs) == 2)
    assert sorted(r["reason_code"] for r in reasons) == ["empty_feed", "missing_id"]
    listed = [json.loads(line) for line in stack.cli("imports", "list", tenant).stdout.splitlines()]
    assert payload["rawId"] in {row["rawId"] for row in listed}
    assert listed[0]["rawId"] == payload["rawId"]  # newest first
    assert {"rowsDone", "rowsTotal", "failures", "state", "percent"} <= set(listed[0])
    missing = stack.cli("imports", "show", "00000000-0000-0000-0000-000000000000", check=False)
    assert missing.returncode == 1


def test_upload_needs_the_source_token_and_a_feed_type(stack: Stack, tenant: str) -> None:
    body = b"id,title\nA,B\n"
    for token in (None, "wrong-token"):
        status, payload = upload(stack, tenant, body, token=token)
        assert status == 401
        assert payload == {"error": {"code": 401, "message": "unauthorized",
                                     "details": "signature or credentials did not verify"}}
    status, payload = upload(stack, tenant, body, content_type="image/png")
    assert status == 415 and payload["error"]["code"] == 415
    status, payload = upload(stack, tenant, body, provider="deliverect")
    assert status == 404
    status, payload = upload(stack, tenant, b"")
    assert status == 400 and payload["error"]["message"] == "empty file"
    status, payload = upload(stack, tenant, body, token="test-admin-token")  # operators may upload too
    assert status == 202


def test_a_value_the_validators_rules_refuse_is_that_rows_failure_and_its_other_commands_go_on(stack: Stack) -> None:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    stack.query("UPDATE tenants SET default_category = NULL WHERE tenant_id = $1", tenant)
    body = (b'id,title,price,availability,google_product_category\n'
            b'V1,Vase,5.00 USD,in_stock,Home\n'
            b'V2,Vat,6.00 USD,in_stock,\n')
    raw_id, failure = _two_rows_one_failure(stack, tenant, body, "cats.csv")
    details = failure["details"]
    # refused where the row is known (no validator hop for feeds): the row and the field are named
    assert (failure["class"], failure["stage"], failure["reason_code"]) == ("validation", "feeds", "category_missing")
    assert (details["file"], details["row"], details["column"]) == ("cats.csv", "2", "category")
    commands = commands_of(stack, raw_id, 7)
    # V2's UpsertCatalogItem is the one refused
    assert sorted(c["_schema"] for c in commands) == sorted([*ROW_TYPES, *ROW_TYPES[1:]])
    assert [c["externalItemId"] for c in commands if c["_schema"] == "UpsertCatalogItem"] == ["V1"]
