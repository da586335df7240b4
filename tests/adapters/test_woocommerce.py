"""WooCommerce specifics: the unsigned ping, raw-byte signatures, variations, stock flags, dedupe ids."""
from __future__ import annotations

import json

import pytest

from ingest.adapters.base import Reply
from ingest.adapters.woocommerce import WooCommerceAdapter
from ingest.errors import InvalidSignature, UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import TEST_SECRET, Case, load_cases

CASES = {c.name: c for c in load_cases("woocommerce")}


def _variant(name: str, body: dict | None = None, headers: dict | None = None,
             tenant: dict | None = None) -> Case:
    case = CASES[name]
    meta = {**case.meta, **({"tenant": tenant} if tenant is not None else {})}
    raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else case.body
    return Case(case.provider, case.name, case.path, raw, {**case.headers, **(headers or {})}, meta)


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def test_given_creation_ping_then_preflight_answers_200_without_entering_pipeline() -> None:
    ping = CASES["ping"]
    reply = WooCommerceAdapter([TEST_SECRET]).preflight("catalog", ping.headers, ping.body)
    assert isinstance(reply, Reply)
    assert (reply.status, reply.enter_pipeline) == (200, False)


def test_given_signed_delivery_then_preflight_does_not_intercept() -> None:
    case = CASES["product.deleted"]
    assert WooCommerceAdapter([TEST_SECRET]).preflight("catalog", case.headers, case.body) is None
    # a ping-shaped body that claims a signature is not a ping: it goes through verification
    assert WooCommerceAdapter([TEST_SECRET]).preflight("catalog", case.headers, b"webhook_id=57") is None


def test_given_body_reserialized_without_escaped_slashes_then_signature_fails() -> None:
    case = CASES["product.created"]
    reserialized = json.dumps(json.loads(case.body), separators=(",", ":")).encode()
    assert reserialized != case.body
    adapter = WooCommerceAdapter([TEST_SECRET])
    adapter.verify_signature(case.headers, case.body)
    with pytest.raises(InvalidSignature):
        adapter.verify_signature(case.headers, reserialized)


def test_given_update_then_event_id_is_source_resource_id_and_gmt_modification() -> None:
    case = CASES["product.updated"]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    assert source.event_id == "https://shop.freshbasket.example.in|product|812|2026-01-14T11:42:40"
    assert adapter.dedupe_key(source) == f"woocommerce:{source.event_id}"


def test_given_two_deletes_of_same_product_in_different_deliveries_then_distinct_ids() -> None:
    first = CASES["product.deleted"]
    second = _variant("product.deleted", headers={"X-WC-Webhook-Delivery-ID": "ffff"})
    adapter = first.adapter()
    assert adapter.parse(first.delivery()).event_id != adapter.parse(second.delivery()).event_id


def test_given_variable_parent_then_only_catalog_item() -> None:
    body = json.loads(CASES["product.created"].body) | {"type": "variable", "variations": [915, 916]}
    assert [c.command_type for c in _commands(_variant("product.created", body))] == ["UpsertCatalogItem"]


def test_given_unmanaged_stock_then_status_flag_without_quantity() -> None:
    body = json.loads(CASES["product.created"].body) | {"manage_stock": False, "stock_quantity": None,
                                                        "stock_status": "outofstock"}
    stock = [c for c in _commands(_variant("product.created", body)) if c.command_type == "UpdateStockLevel"]
    assert [(s.quantity, s.available) for s in stock] == [(None, False)]


def test_given_variation_with_parent_managed_stock_then_no_quantity_claimed() -> None:
    body = json.loads(CASES["product.updated.variation.INFERRED"].body) | {"manage_stock": "parent"}
    stock = [c for c in _commands(_variant("product.updated.variation.INFERRED", body))
             if c.command_type == "UpdateStockLevel"]
    assert [(s.quantity, s.available) for s in stock] == [(None, True)]


def test_given_variation_then_item_is_parent_and_variant_is_variation() -> None:
    case = CASES["product.updated.variation.INFERRED"]
    adapter = case.adapter()
    keys = {str(k) for k in adapter.mapping_keys(adapter.parse(case.delivery()))}
    assert {"item:910", "variant:915"} <= keys and "item:915" not in keys


def test_given_no_currency_then_missing_currency() -> None:
    with pytest.raises(UnparseablePayload) as err:
        _commands(_variant("product.created", tenant={}))
    assert err.value.reason_code == "missing_currency"


def test_given_order_topic_then_unsupported() -> None:
    case = _variant("product.created", headers={"X-WC-Webhook-Topic": "order.created"})
    with pytest.raises(UnsupportedEvent):
        case.adapter().parse(case.delivery())


def test_given_bad_price_then_unparseable_invalid_price() -> None:
    body = json.loads(CASES["product.created"].body) | {"regular_price": "28,00"}
    with pytest.raises(UnparseablePayload) as err:
        _commands(_variant("product.created", body))
    assert err.value.reason_code == "invalid_price"
