"""PetPooja edge cases: string money, local turn-on times, partner replies, order codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.adapters.petpooja import PetPoojaAdapter
from ingest.canonical.commands import UpdatePrice, UpsertMenuItem
from ingest.errors import UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import Case, load_cases

CASES = {c.name: c for c in load_cases("petpooja")}
TENANT = {"default_currency": "INR", "timezone": "Asia/Kolkata"}


def _case(body: object, **meta: object) -> Case:
    return Case("petpooja", "edge", Path("."), json.dumps(body).encode(), {}, {"tenant": TENANT, **meta})


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def test_decimal_string_prices_are_exact() -> None:
    menu = json.loads(CASES["push_menu"].body)
    menu["items"][0]["price"] = "249.50"
    menu["items"][1]["variation"][1]["price"] = "180.05"
    commands = _commands(_case(menu))
    assert next(c for c in commands if isinstance(c, UpsertMenuItem)).amount_minor == 24950
    assert [c.amount_minor for c in commands if isinstance(c, UpdatePrice)] == [14000, 18005]


def test_addons_are_modifier_options_with_selection_limits() -> None:
    item = _commands(CASES["push_menu"])[0]
    group = item.modifier_groups[0]
    assert (group.name, group.min, group.max) == ("Extra Toppings", 0, 2)
    assert [(o.external_item_id, o.amount_minor) for o in group.options] == [("1150810", 3000), ("1150811", 2000)]


def test_turn_on_time_is_read_in_the_tenant_timezone() -> None:
    command = _commands(CASES["item_out_of_stock"])[0]
    assert command.available_again_at.isoformat() == "2025-05-14T22:00:00+05:30"
    assert (command.available, command.reason, command.quantity) == (False, "snooze", None)


@pytest.mark.parametrize(("text", "when"), [("2025-05-14 22:00", "2025-05-14T22:00:00+05:30"),
                                          ("2025-05-14 22:00:30", "2025-05-14T22:00:30+05:30")])
def test_turn_on_time_with_or_without_seconds(text: str, when: str) -> None:
    stock = {"restID": "r", "type": "item", "inStock": False, "itemID": ["1"], "autoTurnOnTime": "custom",
             "customTurnOnTime": text}
    store = {"restID": "r", "store_status": "0", "turn_on_time": text}
    assert _commands(_case(stock))[0].available_again_at.isoformat() == when
    assert _commands(_case(store))[0].until.isoformat() == when


@pytest.mark.parametrize("text", ["tomorrow", "2025-05-14 22:00:30.5", "2025-05-14"])
def test_malformed_turn_on_time_is_unparseable(text: str) -> None:
    body = {"restID": "r", "type": "item", "inStock": False, "itemID": ["1"], "autoTurnOnTime": "custom",
            "customTurnOnTime": text}
    with pytest.raises(UnparseablePayload):
        _commands(_case(body))


@pytest.mark.parametrize(("code", "status"), [("-1", "CANCELLED"), ("1", "ACCEPTED"), ("4", "PICKED_UP"),
                                              ("10", "COMPLETED")])
def test_order_codes(code: str, status: str) -> None:
    command = _commands(_case({"restID": "r", "orderID": "A-1", "status": code}))[0]
    assert (command.status, command.order_id) == (status, "petpooja:A-1")


def test_unknown_order_code_is_acknowledged() -> None:
    with pytest.raises(UnsupportedEvent):
        PetPoojaAdapter(["s"]).parse(_case({"restID": "r", "orderID": "A-1", "status": "7"}).delivery())


def test_partner_replies() -> None:
    adapter = PetPoojaAdapter(["s"])
    menu = adapter.accepted_reply("menu", CASES["push_menu"].body, raw_id="r", base_url="x")
    store = adapter.accepted_reply("store-status", CASES["update_store_status"].body, raw_id="r", base_url="x")
    assert menu is not None and menu.body["success"] == "1"
    assert store is not None and store.body["message"].endswith("ps82kz7f")
    assert adapter.accepted_reply("store-status", CASES["get_store_status"].body, raw_id="r", base_url="x") is None
