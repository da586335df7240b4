"""UrbanPiper edge cases: only applied entries become commands, float money, header choice, states."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ingest.adapters.urbanpiper import UrbanPiperAdapter
from ingest.errors import InvalidCommand, InvalidSignature, UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import Case


def _case(body: object, **meta: object) -> Case:
    return Case("urbanpiper", "edge", Path("."), json.dumps(body).encode(), {}, dict(meta))


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def _entry(ref: str, price: object, action: str = "U", error: bool = False) -> dict:  # type: ignore[type-arg]
    return {"ref_id": ref, "price": price, "upipr_status": {"action": action, "error": error}}


def test_catalogue_callback_prices_are_exact_and_errors_skipped() -> None:
    body = {"reference": "r1", "stats": {}, "items": [_entry("a", 0.1), _entry("b", 249.99),
                                                       _entry("c", 10, error=True), _entry("d", 5, "D")]}
    commands = _commands(_case(body, tenant={"default_currency": "INR"}))
    assert [(c.external_item_id, c.amount_minor, c.currency) for c in commands] == [
        ("a", 10, "INR"), ("b", 24999, "INR")]


def test_catalogue_callback_without_tenant_currency_is_refused() -> None:
    with pytest.raises(InvalidCommand):
        _commands(_case({"reference": "r1", "stats": {}, "items": [_entry("a", 1.0)]}))


def test_only_items_the_platform_applied_change_availability() -> None:
    body = {"action": "enable", "platform": "swiggy", "reference_id": "x", "status": [
        {"location": {"ref_id": "s1"}, "items": [{"ref_id": "ok", "status": "success"},
                                                 {"ref_id": "bad", "status": "failure"}]}]}
    commands = _commands(_case(body))
    assert [(c.external_item_id, c.available) for c in commands] == [("ok", True)]


def test_refused_store_action_changes_nothing() -> None:
    body = {"action": "enable", "location_ref_id": "s1", "platform": "zomato", "status": False}
    assert _commands(_case(body)) == []


def test_same_reference_on_two_platforms_are_two_events() -> None:
    base = {"action": "disable", "location_ref_id": "s1", "reference_id": "r", "status": True}
    ids = {UrbanPiperAdapter(["s"]).parse(_case({**base, "platform": p}).delivery()).event_id
           for p in ("swiggy", "zomato")}
    assert len(ids) == 2


@pytest.mark.parametrize(("state", "status"), [("Acknowledged", "ACCEPTED"), ("Dispatched", "PICKED_UP"),
                                               ("Completed", "COMPLETED"), ("Cancelled", "CANCELLED")])
def test_order_states(state: str, status: str) -> None:
    commands = _commands(_case({"order_id": 7, "store_id": "s1", "new_state": state}))
    assert (commands[0].status, commands[0].order_id) == (status, "urbanpiper:7")


def test_placed_state_is_acknowledged_not_translated() -> None:
    with pytest.raises(UnsupportedEvent):
        UrbanPiperAdapter(["s"]).parse(_case({"order_id": 7, "store_id": "s1", "new_state": "Placed"}).delivery())


def test_registered_header_name_is_configurable() -> None:
    adapter = UrbanPiperAdapter(["s1", "s2"], options={"header_name": "X-Urbanpiper-Uuid"})
    adapter.verify_signature({"x-urbanpiper-uuid": "s2"}, b"{}")
    with pytest.raises(InvalidSignature):
        adapter.verify_signature({"X-Webhook-Token": "s2"}, b"{}")


@pytest.mark.parametrize(("stamp", "when"), [
    (1747225330, datetime(2025, 5, 14, 12, 22, 10, tzinfo=timezone.utc)),
    (1747225330250, datetime(2025, 5, 14, 12, 22, 10, 250000, tzinfo=timezone.utc)),
    (99999999999, datetime(5138, 11, 16, 9, 46, 39, tzinfo=timezone.utc)),
    (100000000000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=timezone.utc))])
def test_unix_times_in_seconds_or_milliseconds_by_magnitude(stamp: int, when: datetime) -> None:
    order = {"order_id": 7, "store_id": "s1", "new_state": "Acknowledged", "timestamp_unix": stamp}
    toggle = {"action": "enable", "location_ref_id": "s1", "status": True, "ts_utc": stamp}
    for body in (order, toggle):
        assert UrbanPiperAdapter(["s"]).parse(_case(body).delivery()).occurred_at == when


def test_unix_time_out_of_range_in_either_unit_is_refused() -> None:
    body = {"order_id": 7, "store_id": "s1", "new_state": "Acknowledged", "timestamp_unix": 10**20}
    with pytest.raises(UnparseablePayload) as info:
        UrbanPiperAdapter(["s"]).parse(_case(body).delivery())
    assert info.value.reason_code == "invalid_timestamp"
