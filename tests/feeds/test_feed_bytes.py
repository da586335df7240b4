"""The feeds worker's output bytes, pinned: every record it would produce for a varied set of feeds.

What ``FeedWorker.run`` produces between the parse and the Kafka transaction (``translate_batch`` with the
validator's rules, the ``Validated`` chunks, the row and unmapped failures), and the deactivations of
``_complete``, for every recorded feed case (tests/adapters/cases/google-merchant, tests/feeds/samples) and a
synthetic feed of awkward rows (missing or long ids, bad or bare or huge prices, unknown currencies, bad and
spaced availability, pre/backorders with dates, sale prices, item groups across batches, supplemental rows,
repeated columns), under tenants with and without a default currency and category, with and without
merchant/store options and with keys left unmapped. The digests were taken from the code before the per-row
CPU work (``bench/feed_cpu.py``); ``UPDATE_GOLDEN=1`` rewrites them — only for an intended output change.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ingest import feeds
from ingest.adapters.registry import product_feed
from ingest.canonical.mapping import MappingContext, MappingKey, TenantSettings, auto_canonical_id
from ingest.kafka import results
from ingest.pipeline import tenant_to_map
from services.feeds.worker import check_for

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "feed_bytes.json"
RAW_ID = "00000000-0000-4000-8000-0000000000f1"
TENANT = "acme"
RECEIVED_AT = datetime(2026, 1, 14, 10, 16, 0, tzinfo=timezone.utc)

SYNTHETIC = (
    "id,title,description,brand,gtin,price,sale_price,availability,availability_date,item_group_id,size,color,"
    "image_link,additional_image_link,additional_image_link,google_product_category,product_type,"
    "custom_label_0,mpn,condition\n"
    "A1,Milk 500 ml,Toned milk,Amul,\"8901262150019, 8901262150026\",28.00 INR,,in_stock,,,500 ml,,"
    "https://i/a1.jpg,https://i/a1b.jpg,https://i/a1c.jpg,Food > Dairy,Dairy,fresh,M-1,new\n"
    ",No id,,,,10 INR,,in_stock,,,,,,,,,,,,\n"
    "ID-THAT-IS-WAY-TOO-LONG-FOR-THE-SPEC-1234567890123456789,Long,,,,10 INR,,in_stock,,,,,,,,,,,,\n"
    "A2,Bad price,,,,ten rupees,,in_stock,,,,,,,,,,,,\n"
    "A3,Bad availability,,,,10 INR,,sometimes,,,,,,,,,,,,\n"
    "A4,Bare price,,,,12.5,,in stock,,,,,,,,,,,,\n"
    "A5,Unknown currency,,,,12.50 XYZ,,in_stock,,,,,,,,,,,,\n"
    "A6,Sale,,Brand,,100.00 INR,79.99 INR,out_of_stock,,,,,,,,,,,,\n"
    "A7,Preorder,,,,5 USD,,preorder,2026-02-01T09:00+0530,,,,,,,,,,,\n"
    "A8,Backorder no offset,,,,5 USD,,backorder,2026-02-01T09:00,,,,,,,,,,,\n"
    "A9,Backorder bad date,,,,5 USD,,back order,soon,,,,,,,,,,,\n"
    "T-S,Tee S,Cotton tee,Acme,4006381333931,499 INR,,in_stock,,TEE,S,navy,https://i/t.jpg,,,Apparel,Tops,,,\n"
    "T-M,Tee M,Cotton tee,Acme,4006381333948,499 INR,449 INR,in_stock,,TEE,M,navy,,,,,,,,\n"
    "T-L,Tee L,,Acme,,499 INR,,out_of_stock,,TEE,L,red,,,,,,,,\n"
    "A1,,,,,30.00 INR,,out_of_stock,,,,,,,,,,,,\n"
    "A10,,,,,,,,,,,,,,,,,,,\n"
    "A11,Huge,,,,99999999999999999999999999999999999999999999 INR,,in_stock,,,,,,,,,,,,\n"
    "A12,Implausible,,,,99999999999999.99 INR,,in_stock,,,,,,,,,,,,\n"
    "A13,Yen,,,,1500.5 JPY,,in_stock,,,,,,,,,,,,\n"
    "A14,Dinar,,,,KWD 4.7505,,in_stock,,,,,,,,,,,,\n"
    "A15,No category,,,,1 INR,,,,,,,,,,,,,,\n"
    "A16,Two fields short\n"
    "U1,Unmapped,,,,1 INR,,in_stock,,,,,,,,,,,,\n"
    "T-XL,Tee XL,,Acme,,499 INR,,in_stock,,TEE,XL,navy,,,,,,,,\n"
    "A17,\"Quoted, title \"\"x\"\"\",\"multi\nline\",,,2 EUR,,in_stock,,,,,,,,,,,,\n"
).encode()

SYNTHETIC_JSON = json.dumps([
    {"offerId": "J1", "title": "Json one", "price": {"amountMicros": "1990000", "currencyCode": "USD"},
     "availability": "IN_STOCK", "gtins": ["123", "456"], "additionalImageLinks": ["https://i/1", "https://i/2"]},
    {"offerId": "J2", "productAttributes": {"title": "Json two", "price": {"value": "3.5", "currency": "EUR"},
                                            "availability": "OUT_OF_STOCK", "itemGroupId": "JG"}},
    {"offerId": "J3", "title": "Json three", "price": "7", "availability": "preorder",
     "availabilityDate": "2026-03-01T10:00:00Z", "customAttributes": [{"name": "size", "value": "L"}]},
    {"title": "Json no id", "price": "1 USD"},
]).encode()

SYNTHETIC_XML = (
    b'<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel>'
    b'<item><g:id>X1</g:id><title>Xml one</title><g:price>15.00 USD</g:price><g:availability>in stock'
    b'</g:availability><g:shipping><g:country>IN</g:country><g:price>0 INR</g:price></g:shipping></item>'
    b'<item><g:id>X2</g:id><g:price>bad</g:price></item>'
    b'<item><g:id>X3</g:id><title>Xml three</title><g:sale_price>9 USD</g:sale_price></item>'
    b'</channel></rss>')


def _cases() -> list[tuple[str, str, bytes, str, str | None]]:
    """(name, provider, body, content type, default currency)."""
    out = []
    gm = ROOT / "adapters" / "cases" / "google-merchant"
    for case in sorted(p for p in gm.iterdir() if p.is_dir()):
        headers = json.loads((case / "headers.json").read_text())
        meta = json.loads((case / "meta.json").read_text())
        out.append((f"google-merchant/{case.name}", "google-merchant", (case / "body.raw").read_bytes(),
                    headers.get("Content-Type", ""), (meta.get("tenant") or {}).get("default_currency")))
    for sample, provider in (("shopify_products_export.csv", "shopify"), ("wc-product-export.csv", "woocommerce")):
        out.append((f"samples/{sample}", provider, (ROOT / "feeds" / "samples" / sample).read_bytes(),
                    "text/csv", "INR"))
    out += [("synthetic.csv", "google-merchant", SYNTHETIC, "text/csv", "INR"),
            ("synthetic.json", "google-merchant", SYNTHETIC_JSON, "application/json", None),
            ("synthetic.xml", "google-merchant", SYNTHETIC_XML, "application/xml", "USD")]
    return out


#: tenant variants: (suffix, default currency override (False: the case's), default category, options)
VARIANTS: list[tuple[str, Any, str | None, dict[str, Any]]] = [
    ("", False, "uncategorized", {}),
    ("/no-defaults", None, None, {}),
    ("/merchant-store", False, "uncategorized", {"merchant": "M1", "store": "S1", "currency": "EUR"}),
]


def _job(provider: str, content_type: str, mode: str = "primary") -> feeds.FeedJob:
    record = {"rawId": RAW_ID, "tenantId": TENANT, "provider": provider, "replayId": None, "dedupeKey": "k",
              "headers": {"Content-Type": content_type, "X-Feed-Name": "golden"}}
    return feeds.FeedJob(RAW_ID, TENANT, provider, "golden", mode, "seg", 0, content_type,
                         f"/v1/integrations/seller/{provider}/import", RECEIVED_AT, "integration.deduped/0/42", record)


def _digest(o: Any) -> str:
    head = f"{o.topic}|{o.key}|{json.dumps(o.headers, sort_keys=True)}|"
    return head + hashlib.sha256(o.value).hexdigest()


def _outputs(name: str, provider: str, body: bytes, content_type: str, currency: str | None,
             variant: tuple[str, Any, str | None, dict[str, Any]]) -> list[str]:
    _, currency_override, category, options = variant
    tenant = TenantSettings(TENANT, auto_create_items=True,
                            default_currency=currency if currency_override is False else currency_override,
                            default_category=category)
    job = _job(provider, content_type)
    feed = product_feed(provider)
    records = list(feed.records([body[i:i + 97] for i in range(0, len(body), 97)], file=job.file,
                                filename=job.file, content_type=content_type))
    out: list[str] = []
    for start in range(0, len(records), 3):  # small batches: item upserts per batch, keys per batch
        batch = records[start:start + 3]
        keys = feeds.batch_keys(feed, batch, options)
        ids = {k: auto_canonical_id(TENANT, provider, k) for k in keys if not k.external_id.startswith("U")}
        ctx = MappingContext(TENANT, provider, ids, tenant)
        result = feeds.translate_batch(job, feed, batch, ctx, options, check_for(tenant))
        outputs = feeds.validated_outputs(job, result.records, tenant_to_map(tenant), max_commands=4,
                                          max_bytes=2048)
        outputs += [feeds.row_error_output(job, e) for e in result.errors]
        outputs += [feeds.unmapped_output(job, row, missing) for row, missing in result.unmapped]
        out += [_digest(o) for o in outputs]
        out += [f"error {e.row} {e.column} {e.reason_code}" for e in result.errors]
        out += [f"unmapped {row.row} {' '.join(map(str, keys))}" for row, keys in result.unmapped]
        out.append("items " + json.dumps(sorted(result.items.items())))
    # a primary import's end: deactivations of the previous snapshot's items, through the same rules
    missing = [("GONE-1", auto_canonical_id(TENANT, provider, MappingKey("item", "GONE-1")), "Gone one"),
               ("GONE-2", auto_canonical_id(TENANT, provider, MappingKey("item", "GONE-2")), "")]
    optional = {k: auto_canonical_id(TENANT, provider, k) for k in feeds.batch_keys(feed, [], options)}
    ctx = MappingContext(TENANT, provider, {MappingKey("item", x): i for x, i, _ in missing} | optional, tenant)
    passed, refused = feeds.checked(feeds.deactivations(job, missing, ctx, options), check_for(tenant))
    out += [_digest(o) for o in feeds.validated_outputs(job, passed, tenant_to_map(tenant))]
    out += [f"refused {e.column} {e.reason_code} {e.message}" for e in refused]
    return out


class _FixedNow(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime(2026, 1, 14, 10, 17, 0, tzinfo=tz)


def _all(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    monkeypatch.setattr(results, "datetime", _FixedNow)  # failure records carry the time they were made
    return {name + variant[0]: _outputs(name, provider, body, ctype, currency, variant)
            for name, provider, body, ctype, currency in _cases() for variant in VARIANTS}


def test_feed_outputs_are_byte_identical_to_the_pinned_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _all(monkeypatch)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name


def test_the_pinned_feeds_cover_every_kind_of_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The golden set is only as good as what it exercises: chunks, row failures of each kind, unmapped rows."""
    text = json.dumps(json.loads(GOLDEN.read_text()))
    for needle in ("integration.validated", "integration.failures", "unmapped", "missing_id", "invalid_id",
                   "invalid_price", "invalid_availability", "invalid_row", "price_out_of_range", "column_count",
                   "category_missing", "refused category category_missing"):
        assert needle in text, needle
    got = _all(monkeypatch)
    assert sum(len(v) for v in got.values()) > 300
