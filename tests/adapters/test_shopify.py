"""Shopify specifics beyond the contract suite: currency, Events headers, dedupe scope, price rules."""
from __future__ import annotations

import json

import pytest

from ingest.adapters.shopify import ShopifyAdapter
from ingest.errors import InvalidSignature, UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import TEST_SECRET, load_cases

CASES = {c.name: c for c in load_cases("shopify")}


def _case_with(name: str, *, body: dict | None = None, headers: dict | None = None,
               tenant: dict | None = None, options: dict | None = None):  # type: ignore[no-untyped-def]
    case = CASES[name]
    raw_body = json.dumps(body).encode() if body is not None else case.body
    meta = {**case.meta}
    if tenant is not None:
        meta["tenant"] = tenant
    if options is not None:
        meta["options"] = options
    return type(case)(case.provider, case.name, case.path, raw_body, {**case.headers, **(headers or {})}, meta)


def _commands(case):  # type: ignore[no-untyped-def]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def test_given_no_tenant_currency_when_products_translated_then_unparseable_missing_currency() -> None:
    case = _case_with("products.create", tenant={"timezone": "Asia/Kolkata"})
    with pytest.raises(UnparseablePayload) as err:
        _commands(case)
    assert err.value.reason_code == "missing_currency"


def test_given_source_currency_option_then_it_wins_over_tenant_default() -> None:
    case = _case_with("products.create", options={"currency": "USD"})
    prices = [c for c in _commands(case) if c.command_type == "UpdatePrice"]
    assert {c.currency for c in prices} == {"USD"}


def test_given_compare_at_below_price_then_only_base_price() -> None:
    body = json.loads(CASES["products.create"].body)
    body["variants"] = [body["variants"][0] | {"price": "30.00", "compare_at_price": "28.00"}]
    prices = [c for c in _commands(_case_with("products.create", body=body)) if c.command_type == "UpdatePrice"]
    assert [(c.price_type, c.amount_minor) for c in prices] == [("base", 3000)]


@pytest.mark.parametrize(("price", "compare_at", "expected"), [
    (0.1, None, [("base", 10)]), (19.99, 24.99, [("base", 2499), ("sale", 1999)]), (30, "28.00", [("base", 3000)]),
    (1e2, None, [("base", 10000)]), (1.005, None, [("base", 101)])])  # float arithmetic: 1.005 * 100 < 100.5
def test_given_numeric_prices_then_converted_exactly(price: object, compare_at: object,
                                                     expected: list[tuple[str, int]]) -> None:
    body = json.loads(CASES["products.create"].body)
    body["variants"] = [body["variants"][0] | {"price": price, "compare_at_price": compare_at}]
    prices = [c for c in _commands(_case_with("products.create", body=body)) if c.command_type == "UpdatePrice"]
    assert [(c.price_type, c.amount_minor) for c in prices] == expected


def test_given_boolean_price_then_unparseable() -> None:
    body = json.loads(CASES["products.create"].body)
    body["variants"] = [body["variants"][0] | {"price": True}]
    with pytest.raises(UnparseablePayload):
        _commands(_case_with("products.create", body=body))


def test_given_draft_product_with_default_variant_then_inactive_and_no_default_title_attribute() -> None:
    body = json.loads(CASES["products.create"].body)
    body["status"] = "draft"
    body["options"] = [{"name": "Title", "position": 1, "values": ["Default Title"]}]
    body["variants"] = [body["variants"][0] | {"option1": "Default Title", "title": "Default Title"}]
    commands = _commands(_case_with("products.create", body=body))
    assert commands[0].active is False
    assert "Title" not in commands[1].attributes


def test_given_untracked_inventory_level_then_no_commands() -> None:
    body = json.loads(CASES["inventory_levels.update"].body) | {"available": None}
    assert _commands(_case_with("inventory_levels.update", body=body)) == []


def test_given_inventory_level_then_store_and_inventory_item_keys_resolved() -> None:
    case = CASES["inventory_levels.update"]
    adapter = case.adapter()
    keys = {str(k) for k in adapter.mapping_keys(adapter.parse(case.delivery()))}
    assert keys == {"merchant:freshbasket-demo.myshopify.com", "store:71234567890",
                    "variant:inventory_item:46011223344501", "item:inventory_item:46011223344501"}


def test_given_same_event_id_from_two_shops_then_dedupe_keys_differ() -> None:
    case = CASES["products.update"]
    adapter = case.adapter()
    first = adapter.dedupe_key(adapter.parse(case.delivery()))
    other = _case_with("products.update", headers={"X-Shopify-Shop-Domain": "other.myshopify.com"})
    assert first == "shopify:freshbasket-demo.myshopify.com:c1a9e4b7-2f3d-4a61-b8e0-9d7f5c3b1a02"
    assert adapter.dedupe_key(adapter.parse(other.delivery())) != first


def test_given_events_style_headers_then_verified_and_classified() -> None:
    case = CASES["products.update"]
    adapter = case.adapter()
    headers = {k.lower().replace("x-shopify-", "shopify-"): v for k, v in case.headers.items()}
    adapter.verify_signature(headers, case.body)
    with pytest.raises(InvalidSignature):
        adapter.verify_signature(headers, case.body + b" ")
    events = _case_with("products.update")
    events.headers = headers
    assert adapter.parse(events.delivery()).event_type == "products/update"


def test_given_rotated_secrets_then_either_verifies() -> None:
    case = CASES["products.create"]
    ShopifyAdapter(["new-secret", TEST_SECRET]).verify_signature(case.headers, case.body)
    with pytest.raises(InvalidSignature):
        ShopifyAdapter(["new-secret"]).verify_signature(case.headers, case.body)


def test_given_missing_topic_or_unknown_topic_then_classified() -> None:
    missing = _case_with("products.create")
    missing.headers = {k: v for k, v in missing.headers.items() if k != "X-Shopify-Topic"}
    with pytest.raises(UnparseablePayload):
        missing.adapter().parse(missing.delivery())
    unknown = _case_with("products.create", headers={"X-Shopify-Topic": "orders/create"})
    with pytest.raises(UnsupportedEvent):
        unknown.adapter().parse(unknown.delivery())


def test_given_product_without_id_then_unparseable() -> None:
    case = _case_with("products.create", body={"title": "x"})
    with pytest.raises(UnparseablePayload):
        case.adapter().parse(case.delivery())
