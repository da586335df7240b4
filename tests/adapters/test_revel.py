"""Revel edge cases: SHA-1 hex signature, algorithm option, modifier ids, float money."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from ingest.adapters.revel import RevelAdapter
from ingest.canonical.mapping import MappingKey
from ingest.errors import InvalidSignature, UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import Case, load_cases

CASES = {c.name: c for c in load_cases("revel")}


def _case(body: object, headers: dict[str, str] | None = None, **meta: object) -> Case:
    return Case("revel", "edge", Path("."), json.dumps(body).encode(), headers or {}, dict(meta))


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def test_signature_is_hmac_sha1_hex_of_the_raw_body() -> None:
    body = CASES["inout.stock"].body
    expected = hmac.new(b"test-secret", body, hashlib.sha1).hexdigest()
    assert CASES["inout.stock"].headers["X-Revel-Signature"] == expected
    RevelAdapter(["other", "test-secret"]).verify_signature({"X-Revel-Signature": expected.upper()}, body)


def test_sha256_when_the_source_says_so() -> None:
    body = CASES["inout.stock"].body
    sha1 = CASES["inout.stock"].headers
    with pytest.raises(InvalidSignature):
        RevelAdapter(["test-secret"], options={"algorithm": "sha256"}).verify_signature(sha1, body)


def test_modifiers_have_their_own_id_space() -> None:
    headers = {"X-Revel-Event-Type": "inout.stock", "X-Revel-Establishment-Id": "1"}
    command = _commands(_case({"id": 1234, "instock": True, "type": "modifier"}, headers))[0]
    assert command.external_item_id == "modifier:1234"


def test_float_price_becomes_exact_minor_units() -> None:
    body = json.loads(CASES["product.list"].body)
    body["objects"][0]["price"] = 4.99
    commands = _commands(_case(body, route="pull", tenant={"default_currency": "USD"}))
    assert commands[1].amount_minor == 499


def test_product_without_price_is_still_an_item_with_no_price() -> None:
    body = json.loads(CASES["product.list"].body)
    body["objects"][0]["price"] = None
    case = _case(body, route="pull", tenant={"default_currency": "USD"})
    assert [c.command_type for c in _commands(case)] == ["UpsertCatalogItem"]
    # its establishment is resolved by no command, so it is no mapping key
    assert case.adapter().mapping_keys(case.adapter().parse(case.delivery())) == {MappingKey("item", "1234")}


@pytest.mark.parametrize("price", ["absent", "not a number"])
def test_product_with_missing_or_bad_price_is_still_refused(price: str) -> None:
    body = json.loads(CASES["product.list"].body)
    if price == "absent":
        del body["objects"][0]["price"]
    else:
        body["objects"][0]["price"] = price
    with pytest.raises(UnparseablePayload):
        _commands(_case(body, route="pull", tenant={"default_currency": "USD"}))


def test_unknown_event_type_header_is_acknowledged() -> None:
    with pytest.raises(UnsupportedEvent):
        RevelAdapter(["s"]).parse(_case({"id": 1}, {"X-Revel-Event-Type": "customer.created"}).delivery())
