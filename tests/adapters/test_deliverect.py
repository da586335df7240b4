"""Deliverect edge cases: money exactness, currency enum, secret rotation, async menus, replies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.adapters.deliverect import DeliverectAdapter
from ingest.canonical.commands import UpdateStockLevel, UpsertMenuItem
from ingest.errors import InvalidCommand, InvalidSignature, UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import Case, load_cases

MENU = next(c for c in load_cases("deliverect") if c.name == "menu_update")


def _case(body: object, **meta: object) -> Case:
    return Case("deliverect", "edge", Path("."), json.dumps(body).encode(), {}, dict(meta))


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def _menu(currency: int, price: int) -> list[dict]:  # type: ignore[type-arg]
    menu = json.loads(MENU.body)
    menu[0]["currency"] = currency
    menu[0]["products"]["6643a1f2c9e77b0012a4d201"]["price"] = price
    return menu


@pytest.mark.parametrize(("code", "price", "iso", "minor"), [
    (1, 1250, "EUR", 1250), (2, 1999, "GBP", 1999), (3, 1, "USD", 1), (16, 100005, "DKK", 100005),
    # three-decimal currency: the integer is already in fils
    (7, 1250, "BHD", 1250),
])
def test_given_integer_price_and_currency_enum_then_exact_minor_units(code: int, price: int, iso: str,
                                                                      minor: int) -> None:
    item = next(c for c in _commands(_case(_menu(code, price))) if isinstance(c, UpsertMenuItem))
    assert (item.amount_minor, item.currency) == (minor, iso)


def test_currency_is_deliverects_enum_not_iso_numeric() -> None:
    # 978 is EUR in ISO 4217 numeric, but Deliverect never sends it: refuse rather than guess
    with pytest.raises(UnparseablePayload):
        _commands(_case(_menu(978, 1250)))


def test_given_price_digits_option_then_it_overrides_the_currency_exponent() -> None:
    case = _case(_menu(7, 1250), options={"price_decimal_digits": 2})
    item = next(c for c in _commands(case) if isinstance(c, UpsertMenuItem))
    assert item.amount_minor == 12500


def test_given_fractional_price_then_unparseable() -> None:
    with pytest.raises(UnparseablePayload):
        _commands(_case(_menu(1, 12.5)))  # type: ignore[arg-type]


def test_modifiers_are_options_of_the_menu_item_not_items() -> None:
    commands = _commands(MENU)
    assert {c.external_item_id for c in commands} == {"P-BURG-CHE", "P-BURG-VEG"}
    options = commands[0].modifier_groups[0].options
    assert [(o.external_item_id, o.amount_minor) for o in options] == [("MOD-FRIES", 0), ("MOD-SALAD", 150)]


def test_given_two_active_secrets_then_either_verifies_and_a_third_does_not() -> None:
    adapter = DeliverectAdapter(["old-secret", "new-secret"])
    for secret in ("old-secret", "new-secret"):
        adapter.verify_signature(adapter.sign(MENU.body, secret=secret, timestamp=0), MENU.body)
    with pytest.raises(InvalidSignature):
        adapter.verify_signature(adapter.sign(MENU.body, secret="other", timestamp=0), MENU.body)


def test_given_async_menu_then_callback_is_visible_and_every_store_gets_the_menu() -> None:
    body = {"menus": json.loads(MENU.body), "stores": ["link-a", "link-b"],
            "callback": "https://api.staging.deliverect.com/acme/menuStatus/abc123"}
    case = _case(body)
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    assert source.callback_url == body["callback"]
    keys = {str(k) for k in adapter.mapping_keys(source)}
    assert {"store:link-a", "store:link-b"} <= keys
    stores = {c.store_id for c in _commands(case) if isinstance(c, UpsertMenuItem)}
    assert len(stores) == 2


def test_snoozed_product_carries_its_snooze_end() -> None:
    stock = [c for c in _commands(MENU) if isinstance(c, UpdateStockLevel)]
    assert [(c.external_item_id, c.available, c.available_again_at.isoformat()) for c in stock] == [
        ("P-BURG-VEG", False, "2025-05-14T22:00:00+00:00")]


@pytest.mark.parametrize("where", ["operation", "data"])
def test_all_snoozed_items_is_accepted_in_both_places(where: str) -> None:
    op = {"action": "unsnooze", "data": {"items": [{"plu": "A"}]}}
    extra = [{"plu": "B", "snoozeEnd": "2025-05-15T09:30:00Z"}]
    (op if where == "operation" else op["data"])["allSnoozedItems"] = extra
    commands = _commands(_case({"channelLinkId": "L", "operations": [op]}))
    assert [(c.external_item_id, c.available) for c in commands] == [("A", True)]


def test_given_registration_then_reply_names_our_endpoints() -> None:
    case = next(c for c in load_cases("deliverect") if c.name == "channel_registration")
    reply = DeliverectAdapter(["s"]).accepted_reply("store-status", case.body, raw_id="r",
                                                   base_url="https://acme.pos.example.com/")
    assert reply is not None and reply.status == 200
    root = "https://acme.pos.example.com/v1/integrations/pos/deliverect/webhooks"
    assert reply.body["menuUpdateURL"] == f"{root}/menu"
    assert reply.body["snoozeUnsnoozeURL"] == f"{root}/inventory"
    assert reply.body["busyModeURL"] == f"{root}/store-status"
    assert reply.body["statusUpdateURL"] == f"{root}/order-status"
    assert reply.body["courierUpdateURL"] == ""


def test_busy_mode_reply_echoes_the_status() -> None:
    case = next(c for c in load_cases("deliverect") if c.name == "busy_mode.busy")
    reply = DeliverectAdapter(["s"]).accepted_reply("store-status", case.body, raw_id="r", base_url="x")
    assert reply is not None and reply.body == {"status": "BUSY"}


def test_order_status_without_canonical_meaning_is_acknowledged_not_failed() -> None:
    case = _case({"orderId": "o1", "status": 10, "channelLink": "L"})
    with pytest.raises(UnsupportedEvent):
        case.adapter().parse(case.delivery())


def test_given_menu_without_currency_and_no_tenant_currency_then_invalid_command() -> None:
    menu = json.loads(MENU.body)
    del menu[0]["currency"]
    with pytest.raises(InvalidCommand):
        _commands(_case(menu))
