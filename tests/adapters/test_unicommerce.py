"""Unicommerce specifics: token auth, replies Uniware expects, tolerant keys, dates, the no-double-count rule."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingest.adapters.unicommerce import UnicommerceAdapter
from ingest.adapters.unicommerce.adapter import auth_token_reply, parse_uniware_time
from ingest.errors import InvalidSignature, UnparseablePayload
from tests.adapters.cases import TEST_SECRET, Case, load_cases

CASES = {c.name: c for c in load_cases("unicommerce")}
SAMPLES = Path("/work/shared/reference/samples/erp/unicommerce")


def _variant(name: str, body: bytes | None = None, **meta: object) -> Case:
    case = CASES[name]
    return Case(case.provider, case.name, case.path, case.body if body is None else body, dict(case.headers),
                {**case.meta, **meta})


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


@pytest.mark.parametrize("headers", [{"apiKey": TEST_SECRET}, {"Authorization": TEST_SECRET},
                                     {"authorization": f"Bearer {TEST_SECRET}"}])
def test_given_our_token_in_any_documented_header_then_accepted(headers: dict[str, str]) -> None:
    UnicommerceAdapter([TEST_SECRET]).verify_signature(headers, b"{}")


def test_given_wrong_or_no_token_then_rejected_and_rotation_accepts_both() -> None:
    with pytest.raises(InvalidSignature):
        UnicommerceAdapter([TEST_SECRET]).verify_signature({"Authorization": "Bearer nope"}, b"{}")
    with pytest.raises(InvalidSignature):
        UnicommerceAdapter([TEST_SECRET]).verify_signature({"Content-Type": "application/json"}, b"{}")
    UnicommerceAdapter(["old-token", TEST_SECRET]).verify_signature({"apiKey": "old-token"}, b"{}")


def test_given_update_inventory_accepted_then_reply_is_uniwares_success_shape() -> None:
    reply = UnicommerceAdapter([TEST_SECRET]).accepted_reply("updateInventory", b"{}", raw_id="r", base_url="")
    assert reply is not None and reply.body == json.loads((SAMPLES / "update_inventory.response.json").read_bytes())
    notification = UnicommerceAdapter().accepted_reply("completeReturn", b"{}", raw_id="r", base_url="")
    assert notification is not None and notification.body["status"] == "Success"
    assert UnicommerceAdapter().accepted_reply("stock", b"{}", raw_id="r", base_url="") is None


def test_given_issued_token_then_auth_token_reply_matches_documented_shape() -> None:
    sample = json.loads((SAMPLES / "auth_token.response.json").read_bytes())
    assert auth_token_reply(sample["accessToken"]).body == sample
    assert auth_token_reply(None).body["status"] == "FAILED"


def test_given_mixed_key_spellings_and_duplicate_keys_then_parsed_last_wins() -> None:
    body = (b'{"GRNnumber": "GRN-1", "grnItems": [{"skuCode": "S1", "Quantity": "4", "unitPrice": 1, '
            b'"unitPrice": 2}], "GRNCreatedDateTime": "Jan 14, 2026 10:42:05 AM"}')
    source = UnicommerceAdapter().parse(_variant("completeInflowReceipt", body).delivery())
    assert source.event_id == "grn:GRN-1"
    assert source.payload["grnitems"][0]["unitprice"] == 2
    assert source.body.grnitems[0].quantity == "4"


def test_given_zone_less_dates_then_read_in_tenant_timezone() -> None:
    source = CASES["completeInflowReceipt"].adapter().parse(CASES["completeInflowReceipt"].delivery())
    assert source.occurred_at == datetime(2026, 1, 14, 5, 12, 5, tzinfo=timezone.utc)  # 10:42:05 IST
    utc = _variant("completeInflowReceipt", tenant={"timezone": "UTC"})
    assert utc.adapter().parse(utc.delivery()).occurred_at == datetime(2026, 1, 14, 10, 42, 5, tzinfo=timezone.utc)
    assert parse_uniware_time("1593590417000", "Asia/Kolkata") == datetime(2020, 7, 1, 8, 0, 17, tzinfo=timezone.utc)
    assert parse_uniware_time("Jul 9, 2024 12:05:00 AM", "UTC") == datetime(2024, 7, 9, 0, 5, tzinfo=timezone.utc)


def test_given_grn_gatepass_and_returns_then_audit_only_no_stock_commands() -> None:
    for name in ("completeInflowReceipt", "closeGatepass", "createReturn", "completeReturn"):
        case = CASES[name]
        source = case.adapter().parse(case.delivery())
        assert source.event_type == name
        assert _commands(case) == [], name


def test_given_notification_keys_then_documented_idempotency_keys() -> None:
    ids = {name: CASES[name].adapter().parse(CASES[name].delivery()).event_id
           for name in ("closeGatepass", "createReturn", "completeReturn")}
    assert ids == {"closeGatepass": "gatepass:GP-KOR-000077:CLOSED", "createReturn": "return:RP-7781:CREATED",
                   "completeReturn": "return:RP-7781:COMPLETED"}


def test_given_same_update_inventory_body_in_another_minute_then_not_a_duplicate() -> None:
    case = CASES["updateInventory"]
    adapter = case.adapter()
    first = adapter.dedupe_key(adapter.parse(case.delivery()))
    later = adapter.dedupe_key(adapter.parse(
        case.delivery().__class__(**{**case.delivery().__dict__,
                                     "received_at": case.delivery().received_at + timedelta(minutes=10)})))
    assert first != later and first.startswith("unicommerce:updateInventory:")


def test_given_line_without_facility_then_default_facility_option_or_missing_facility() -> None:
    body = json.loads(CASES["updateInventory"].body)
    for line in body["inventoryList"]:
        del line["facilityCode"]
    raw = json.dumps(body).encode()
    with pytest.raises(UnparseablePayload) as err:
        _commands(_variant("updateInventory", raw))
    assert err.value.reason_code == "missing_facility"
    commands = _commands(_variant("updateInventory", raw, options={"facility": "DS-BLR-KOR-01"}))
    assert len({c.store_id for c in commands}) == 1


def test_given_non_integer_inventory_then_invalid_quantity() -> None:
    raw = CASES["updateInventory"].body.replace(b'"inventory": "42"', b'"inventory": "forty"')
    with pytest.raises(UnparseablePayload) as err:
        _commands(_variant("updateInventory", raw))
    assert err.value.reason_code == "invalid_quantity"


def test_given_absolute_inventory_then_zero_is_unavailable() -> None:
    commands = _commands(CASES["updateInventory"])
    assert [(c.quantity, c.available, c.mode) for c in commands] == [
        ("42", True, "absolute"), ("0", False, "absolute"), ("15", True, "absolute")]
