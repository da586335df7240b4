"""Vinculum specifics: request builders for the poller, snapshot vs ledger semantics, dates, error bodies."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ingest.adapters.vinculum.adapter import form_request, header_request, parse_vinculum_time, request_window
from ingest.canonical.mapping import MappingKey, auto_canonical_id
from ingest.errors import UnparseablePayload
from tests.adapters.cases import TENANT, Case, load_cases

CASES = {c.name: c for c in load_cases("vinculum")}
SAMPLES = Path("/work/shared/reference/samples/erp/vinculum")


def _variant(name: str, body: bytes | None = None, **meta: object) -> Case:
    case = CASES[name]
    return Case(case.provider, case.name, case.path, case.body if body is None else body, dict(case.headers),
                {**case.meta, **meta})


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def test_given_request_json_then_form_body_matches_documented_bytes() -> None:
    form_line = (SAMPLES / "inventory_status_v3.request.form.txt").read_text().strip().splitlines()[-1]
    body = json.loads((SAMPLES / "inventory_status_v3.request.json").read_bytes())
    owner_key = dict(p.split("=", 1) for p in form_line.split("&")[:2])
    assert form_request(owner_key["ApiOwner"], owner_key["ApiKey"], body) == form_line.encode()


def test_given_v4_request_then_credentials_in_headers_not_body() -> None:
    headers, body = header_request("qcomm_int", "k", {"skuCodes": ["A"]})
    assert (headers["ApiOwner"], headers["ApiKey"]) == ("qcomm_int", "k")
    assert b"ApiKey" not in body and json.loads(body) == {"skuCodes": ["A"]}


def test_given_utc_window_then_request_dates_in_org_timezone() -> None:
    window = request_window(datetime(2026, 1, 14, 4, 30, tzinfo=timezone.utc),
                            datetime(2026, 1, 14, 4, 45, tzinfo=timezone.utc), "Asia/Kolkata")
    assert window == {"fromDate": "14/01/2026 10:00:00", "toDate": "14/01/2026 10:15:00"}


@pytest.mark.parametrize(("text", "expected"), [
    ("14/01/2026 10:04 AM", datetime(2026, 1, 14, 4, 34, tzinfo=timezone.utc)),
    ("17/11/2016 18:14:22", datetime(2016, 11, 17, 12, 44, 22, tzinfo=timezone.utc)),
    ("05/11/2020 16:52 PM", datetime(2020, 11, 5, 11, 22, tzinfo=timezone.utc)),
    ("2017-12-16 12:59:31.0", datetime(2017, 12, 16, 7, 29, 31, tzinfo=timezone.utc)),
    ("14/01/2026 12:10 AM", datetime(2026, 1, 13, 18, 40, tzinfo=timezone.utc)),
    ("not a date", None),
])
def test_given_vinculum_date_spellings_then_utc(text: str, expected: datetime | None) -> None:
    assert parse_vinculum_time(text, "Asia/Kolkata") == expected


def test_given_snapshot_then_committed_subtracted_unless_disabled() -> None:
    assert [c.quantity for c in _commands(CASES["inventoryStatus"])] == ["39", "44"]
    raw = [c.quantity for c in _commands(_variant("inventoryStatus", options={"subtract_committed": False}))]
    assert raw == ["42", "46"]


def _stores(case: Case) -> list[tuple[str, str]]:
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    stores = {k.external_id for k in adapter.mapping_keys(source) if k.entity == "store"}
    by_id = {auto_canonical_id(TENANT, "vinculum", MappingKey("store", s)): s for s in stores}
    return [(c.external_item_id, by_id[c.store_id]) for c in _commands(case)]


@pytest.mark.parametrize(("headers", "options", "expected"), [
    ({"X-Vinculum-Location": "KOR"}, {"location": "BLR"}, "KOR"),  # the polled locCode wins over the option
    ({"x-vinculum-location": "KOR"}, {}, "KOR"),
    ({}, {"location": "BLR"}, "BLR"),  # a single-location source names it in its options
])
def test_given_row_without_location_then_polled_location_header_else_option(
        headers: dict[str, str], options: dict[str, str], expected: str) -> None:
    case = CASES["inventoryStatus.row-without-location"]
    variant = Case(case.provider, case.name, case.path, case.body, headers, {**case.meta, "options": options})
    # rows naming their own location keep it
    assert _stores(variant) == [("TOMATO-HYB-KG", "BLR"), ("ONION-KG", expected), ("AMUL-TAAZA-500", "BLR")]


def test_given_row_without_location_and_neither_header_nor_option_then_unparseable() -> None:
    case = CASES["inventoryStatus.row-without-location"]
    with pytest.raises(UnparseablePayload) as err:
        _commands(Case(case.provider, case.name, case.path, case.body, {}, {**case.meta, "options": {}}))
    assert err.value.reason_code == "missing_location"


def test_given_bucketed_snapshot_then_only_good_bucket_is_sellable() -> None:
    commands = _commands(CASES["getWhInventory"])
    assert [(c.external_item_id, c.quantity, c.mode) for c in commands] == [("AMUL-TAAZA-500", "39", "absolute")]


def test_given_three_decimal_ledger_quantities_then_canonical_signed_deltas() -> None:
    body = CASES["adjustmentDetail"].body.replace(b'"qty": "-2.00"', b'"qty": "-1.250"')
    commands = _commands(_variant("adjustmentDetail", body))
    assert [(c.quantity, c.mode, c.reason) for c in commands] == [("-1.25", "delta", "adjustment"),
                                                                  ("1", "delta", "adjustment")]


def test_given_snapshots_also_polled_then_adjustments_are_audit_only() -> None:
    assert _commands(_variant("adjustmentDetail", options={"apply_adjustments": False})) == []


def test_given_receiving_returns_transfers_then_audit_only() -> None:
    for name in ("inboundDetail", "orderReturn", "stoDetails"):
        assert _commands(CASES[name]) == [], name


def test_given_generic_family_then_document_classified_by_shape() -> None:
    for name in CASES:  # a case is named after its document, then a dot and the variant it records
        case = _variant(name, family="pull")
        assert case.adapter().parse(case.delivery()).event_type == name.split(".")[0]


def test_given_error_response_then_unparseable() -> None:
    body = b'{"responseCode": 1, "responseMessage": "Invalid ApiKey", "response": null}'
    with pytest.raises(UnparseablePayload) as err:
        CASES["inventoryStatus"].adapter().parse(_variant("inventoryStatus", body).delivery())
    assert err.value.reason_code == "error_response"


def test_given_inactive_sku_and_no_currency_then_deactivated_or_missing_currency() -> None:
    body = CASES["skuDetail"].body.replace(b'"isSaleable": "true"', b'"isSaleable": "false"')
    assert _commands(_variant("skuDetail", body))[0].active is False
    with pytest.raises(UnparseablePayload) as err:
        _commands(_variant("skuDetail", tenant={}))
    assert err.value.reason_code == "missing_currency"
