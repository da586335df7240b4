"""The streaming feed parser: every format, the awkward bytes (BOM, CRLF, quotes, bad rows), bounded memory."""
from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.adapters.base import CommandFactory, Headers, RawDelivery, SourceEvent
from ingest.adapters.google_merchant.feed import FeedRow, RowError, detect_format, iter_rows
from ingest.adapters.google_merchant.translate import row_keys, rows_to_commands
from ingest.canonical.mapping import MappingContext, auto_canonical_id
from tests.adapters.cases import RECEIVED_AT

SAMPLES = Path(__file__).parent / "cases" / "google-merchant"


def _rows(data: bytes, fmt: str | None = None, chunk: int = 0, **kw) -> list:  # type: ignore[no-untyped-def,type-arg]
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    return list(iter_rows(chunks, fmt=fmt, file="f.txt", **kw))  # type: ignore[arg-type]


def _good(items: list) -> list[FeedRow]:  # type: ignore[type-arg]
    return [i for i in items if isinstance(i, FeedRow)]


def _errors(items: list) -> list[RowError]:  # type: ignore[type-arg]
    return [i for i in items if isinstance(i, RowError)]


# --- every sample, every chunking ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["feed.tsv", "feed.csv", "feed.xml"])
@pytest.mark.parametrize("chunk", [0, 1, 7, 4096])
def test_given_sample_in_any_chunking_then_same_three_rows(name: str, chunk: int) -> None:
    items = _rows((SAMPLES / name / "body.raw").read_bytes(), chunk=chunk)
    assert not _errors(items)
    rows = _good(items)
    assert [r.get("id") for r in rows] == ["AMUL-TAAZA-500", "AMUL-TAAZA-1000", "TSHIRT-CTN-M-NAVY"]
    assert rows[0].get("description") == "Pasteurised toned milk (3% fat, 8.5% SNF). Keep refrigerated."
    assert rows[0].get("additional_image_link").count(",") == 1
    assert rows[0].get("google_product_category") == "Food, Beverages & Tobacco > Food Items > Dairy Products > Milk"
    assert [r.row for r in rows] == [1, 2, 3]


def test_given_format_sniffing_then_each_sample_detected() -> None:
    assert detect_format((SAMPLES / "feed.tsv" / "body.raw").read_bytes()[:200]) == "tsv"
    assert detect_format((SAMPLES / "feed.csv" / "body.raw").read_bytes()[:200]) == "csv"
    assert detect_format(b"\xef\xbb\xbf<?xml version='1.0'?><rss/>") == "xml"
    assert detect_format(b"  [{}]") == "json"
    assert detect_format(b"id,title", filename="x.txt") == "tsv"  # Google's .txt feeds are tab-separated
    assert detect_format(b"id\ttitle", content_type="text/csv; charset=utf-8") == "csv"


# --- delimited ------------------------------------------------------------------------------------
def test_given_bom_and_crlf_then_header_is_clean_and_values_have_no_cr() -> None:
    data = "\ufeffid,title,price\r\nA1,Milk,28.00 INR\r\nA2,Curd,30.00 INR\r\n".encode()
    rows = _good(_rows(data, "csv", chunk=5))
    assert list(rows[0].fields) == ["id", "title", "price"]
    assert [r.fields for r in rows][1] == {"id": "A2", "title": "Curd", "price": "30.00 INR"}


def test_given_quoted_separators_quotes_and_line_breaks_then_one_field_each() -> None:
    data = b'id,title,description\r\nA1,"Milk, toned","He said ""fresh""\r\nline two"\r\nA2,Curd,plain\r\n'
    rows = _good(_rows(data, "csv", chunk=3))
    assert rows[0].get("title") == "Milk, toned"
    assert rows[0].get("description") == 'He said "fresh"\r\nline two'
    assert (rows[1].get("id"), rows[1].line) == ("A2", 4)


def test_given_tsv_with_quoted_tab_then_tab_kept_in_field() -> None:
    data = b'id\ttitle\tprice\nA1\t"Milk\twith tab"\t28 INR\n'
    assert _good(_rows(data, "tsv"))[0].get("title") == "Milk\twith tab"


def test_given_malformed_rows_then_errors_name_file_row_line_and_parsing_goes_on() -> None:
    data = (b"id,title,price\n"
            b"A1,Milk,28.00 INR\n"
            b"A2,Curd,30.00 INR,extra\n"  # one field too many
            b"A3,Paneer\n"                  # one field short (truncated)
            b"A4,Butter,55.00 INR\n")
    items = _rows(data, "csv")
    errors = _errors(items)
    assert [(e.row, e.line, e.reason_code) for e in errors] == [(2, 3, "column_count"), (3, 4, "column_count")]
    assert "f.txt: row 2 (line 3)" in str(errors[0])
    assert [r.get("id") for r in _good(items)] == ["A1", "A4"]


def test_given_invalid_utf8_in_a_cell_then_that_row_and_column_reported() -> None:
    data = b"id,title\nA1,Milk\nA2,Cr\xff\xfeme\nA3,Curd\n"
    items = _rows(data, "csv")
    assert [(e.row, e.column, e.reason_code) for e in _errors(items)] == [(2, "title", "invalid_encoding")]
    assert [r.get("id") for r in _good(items)] == ["A1", "A3"]


def test_given_comment_lines_and_blank_lines_then_skipped() -> None:
    data = b"# note above the header\nid,qty\n\nA1,3\n# trailing note\nA2,4\n"
    rows = _good(_rows(data, "csv", comment_prefix="#"))
    assert [(r.get("id"), r.line) for r in rows] == [("A1", 4), ("A2", 6)]


def test_given_g_prefixed_and_repeated_headers_then_normalised_and_joined() -> None:
    data = b"g:id,Title,additional_image_link,additional_image_link\nA1,Milk,http://a/1.jpg,http://a/2.jpg\n"
    row = _good(_rows(data, "csv"))[0]
    assert row.fields == {"id": "A1", "title": "Milk", "additional_image_link": "http://a/1.jpg,http://a/2.jpg"}


# --- XML ------------------------------------------------------------------------------------------
def test_given_atom_feed_with_g_namespace_then_rows() -> None:
    data = (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" '
            b'xmlns:g="http://base.google.com/ns/1.0"><title>x</title>'
            b'<entry><g:id>A1</g:id><title>Milk</title><g:price>28.00 INR</g:price>'
            b'<g:shipping><g:country>IN</g:country><g:price>0 INR</g:price></g:shipping></entry></feed>')
    row = _good(_rows(data, chunk=11))[0]
    assert row.fields == {"id": "A1", "title": "Milk", "price": "28.00 INR", "shipping": "IN:0 INR"}


def test_given_xml_that_breaks_midway_then_rows_before_kept_and_one_error() -> None:
    data = (b'<rss xmlns:g="http://base.google.com/ns/1.0"><channel>'
            b'<item><g:id>A1</g:id></item><item><g:id>A2</g:id></itm></channel></rss>')
    items = _rows(data, "xml")
    assert [r.get("id") for r in _good(items)] == ["A1"]
    assert [(e.row, e.reason_code) for e in _errors(items)] == [(2, "malformed_xml")]


# --- JSON -----------------------------------------------------------------------------------------
def test_given_json_array_with_tricky_strings_then_each_element_a_row() -> None:
    data = json.dumps([{"offerId": "A1", "productAttributes": {"title": 'Milk "[{x}]" \\ }',
                                                               "price": {"amountMicros": "28500000",
                                                                         "currencyCode": "INR"}}},
                       {"id": "A2", "title": "Curd", "availability": "OUT_OF_STOCK"}]).encode()
    rows = _good(_rows(data, chunk=3))
    assert rows[0].fields == {"id": "A1", "title": 'Milk "[{x}]" \\ }', "price": "28.5 INR"}
    assert rows[1].get("availability") == "out_of_stock"


def test_given_json_lines_with_a_bad_line_then_error_and_the_rest() -> None:
    data = b'{"id": "A1"}\n{"id": "A2", "title": }\n{"id": "A3"}\n'
    items = _rows(data, "json")
    assert [r.get("id") for r in _good(items)] == ["A1", "A3"]
    assert [e.reason_code for e in _errors(items)] == ["invalid_json"]


def test_given_truncated_json_then_truncation_reported() -> None:
    items = _rows(b'[{"id": "A1"}, {"id": "A2", "ti', "json")
    assert [r.get("id") for r in _good(items)] == ["A1"]
    assert [e.reason_code for e in _errors(items)] == ["truncated"]


# --- rows → commands ------------------------------------------------------------------------------
def _factory(rows: list[FeedRow]) -> tuple[CommandFactory, MappingContext]:
    ctx = MappingContext("acme", "google-merchant",
                         {k: auto_canonical_id("acme", "google-merchant", k) for k in row_keys(rows)})
    raw = RawDelivery(b"", Headers({}), "raw-1", "acme", "google-merchant", "import", RECEIVED_AT)
    return CommandFactory(SourceEvent(event_type="feed", delivery=raw), ctx), ctx


def test_given_bad_values_then_row_errors_name_the_column_and_good_rows_still_translate() -> None:
    data = (b"id,title,price,sale_price,availability\n"
            b"A1,Milk,28.00 INR,27.50 INR,in stock\n"
            b"A2,Curd,thirty INR,,in_stock\n"
            b"A3,Ghee,499 XYZ,,in_stock\n"
            b"A4,Butter,55.00 INR,,sold_out\n"
            b",Nameless,10 INR,,in_stock\n"
            b"A6,,12.5 INR,,out_of_stock\n")
    rows = _good(_rows(data, "csv"))
    make, ctx = _factory(rows)
    batch = rows_to_commands(rows, make, ctx)
    assert [(e.row, e.column, e.reason_code) for e in batch.errors] == [
        (2, "price", "invalid_price"), (3, "price", "invalid_price"),
        (4, "availability", "invalid_availability"), (5, "id", "missing_id")]
    by_row = [(c.command_type, getattr(c, "amount_minor", None), getattr(c, "quantity", None))
              for c in batch.commands]
    assert by_row == [("UpsertCatalogItem", None, None), ("UpsertVariant", None, None),
                      ("UpdatePrice", 2800, None), ("UpdatePrice", 2750, None), ("UpdateStockLevel", None, None),
                      # A6 has no title: a supplemental row, price and availability only
                      ("UpdatePrice", 1250, None), ("UpdateStockLevel", None, "0")]


def test_given_bare_number_price_then_default_currency_or_error() -> None:
    rows = _good(_rows(b"id,price\nA1,15\n", "csv"))
    make, ctx = _factory(rows)
    assert rows_to_commands(rows, make, ctx).errors[0].column == "price"
    make, ctx = _factory(rows)
    assert rows_to_commands(rows, make, ctx, default_currency="JPY").commands[0].amount_minor == 15


def test_given_group_split_over_batches_then_item_upserted_once() -> None:
    rows = _good(_rows(b"id,title,item_group_id\nV1,Tee S,G\nV2,Tee M,G\n", "csv"))
    seen: set[str] = set()
    kinds = []
    for row in rows:
        make, ctx = _factory([row])
        kinds += [c.command_type for c in rows_to_commands([row], make, ctx, seen_items=seen).commands]
    assert kinds == ["UpsertCatalogItem", "UpsertVariant", "UpsertVariant"]


# --- bounded memory -------------------------------------------------------------------------------
FIFTY_MB = 50 * 1024 * 1024


def _generated_csv(total: int) -> Iterator[bytes]:
    """A ~50 MB CSV produced 64 KiB at a time: the test never holds the file either."""
    yield "\ufeffid,title,description,price,availability\r\n".encode()
    produced, n = 0, 0
    while produced < total:
        lines = []
        for _ in range(500):
            n += 1
            lines.append(f'SKU-{n:08d},"Item {n}, size M","Line one\r\nline ""two"" {n}",{n % 997}.50 INR,'
                         f'in_stock\r\n')
        chunk = "".join(lines).encode()
        produced += len(chunk)
        yield chunk


def _generated_xml(total: int) -> Iterator[bytes]:
    yield b'<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>'
    produced, n = 0, 0
    while produced < total:
        items = []
        for _ in range(300):
            n += 1
            items.append(f"<item><g:id>SKU-{n:08d}</g:id><g:title>Item {n} &amp; co</g:title>"
                         f"<g:price>{n % 997}.50 INR</g:price><g:availability>in_stock</g:availability></item>")
        chunk = "".join(items).encode()
        produced += len(chunk)
        yield chunk
    yield b"</channel></rss>"


# tracemalloc slows parsing about ten times: the XML variant is 10 MB to keep the suite quick
@pytest.mark.parametrize(("generate", "total"), [(_generated_csv, FIFTY_MB), (_generated_xml, 10 * 1024 * 1024)],
                         ids=["csv-50mb", "xml-10mb"])
def test_given_big_feed_when_streamed_then_peak_memory_stays_far_below_file_size(generate, total: int  # type: ignore[no-untyped-def]
                                                                                 ) -> None:
    size = sum(len(c) for c in generate(total))
    assert size >= total
    tracemalloc.start()
    try:
        count, last = 0, None
        for item in iter_rows(generate(total), file="big"):
            assert isinstance(item, FeedRow), item
            count += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last is not None and last.get("id") == f"SKU-{count:08d}"
    assert count > total // 200
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"
