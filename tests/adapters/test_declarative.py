"""Declarative adapter: the spec is validated, and Atlas stock.updated as a spec equals the code adapter."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ingest.adapters.atlas import AtlasAdapter
from ingest.adapters.declarative import (
    DotPeAdapter,
    PosistAdapter,
    SpecError,
    load_spec,
    packaged_spec,
    spec_adapter,
)
from ingest.errors import UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import Case, load_cases

ATLAS_STOCK = next(c for c in load_cases("atlas") if c.name == "stock.updated")
AtlasSpecAdapter = spec_adapter(packaged_spec("atlas_stock.v1.yaml"))


def _dump(commands: list) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(c.model_dump_json(by_alias=True)) for c in commands]


def _run(adapter: Any, case: Case) -> tuple[list[dict], object]:  # type: ignore[type-arg]
    source = adapter.parse(case.delivery())
    keys = adapter.mapping_keys(source)
    commands = adapter.to_canonical_commands(source, case.context(keys))
    return _dump(commands), (keys, source.event_id, source.occurred_at)


@pytest.mark.parametrize("variant", ["recorded", "available", "merchant-header", "other-ids"])
def test_atlas_stock_updated_as_spec_equals_code(variant: str) -> None:
    case = ATLAS_STOCK
    body = json.loads(case.body)
    headers = dict(case.headers)
    if variant == "available":
        body["payload"]["is_available"] = True
    elif variant == "merchant-header":
        headers["X-Merchant-Id"] = "m-42"
    elif variant == "other-ids":
        body["payload"].update(item_id=9, outlet_id=12)
        body["event_at"] = 1747000000
    case = replace(case, body=json.dumps(body).encode(), headers=headers)
    code_out, code_meta = _run(AtlasAdapter(["test-secret"]), case)
    spec_out, spec_meta = _run(AtlasSpecAdapter(["test-secret"]), case)
    assert code_out and spec_out == code_out
    assert spec_meta == code_meta


def test_spec_adapter_verifies_like_the_code_adapter() -> None:
    AtlasSpecAdapter(["a", "test-secret"]).verify_signature(ATLAS_STOCK.headers, ATLAS_STOCK.body)


@pytest.mark.parametrize("broken", [
    {"spec_version": 2},
    {"event_type": {"path": "x", "const": "y"}},
    {"events": {"e": {"commands": [{"type": "DeleteEverything", "fields": {}}]}}},
    {"events": {"e": {"commands": [{"type": "UpdateStockLevel", "fields": {"colour": {"const": 1}}}]}}},
    {"events": {"e": {"commands": [{"type": "UpdatePrice", "fields": {"amount_minor": {"path": "p",
                                                                                       "as": "money_major"}}}]}}},
])
def test_invalid_specs_are_refused(broken: dict) -> None:  # type: ignore[type-arg]
    spec = {"spec_version": 1, "provider": "x", "auth": {"scheme": "bearer"}, "event_type": {"path": "t"},
            "events": {}} | broken
    with pytest.raises(SpecError):
        load_spec(json.dumps(spec))


def test_money_in_a_spec_is_exact() -> None:
    spec = load_spec(json.dumps({
        "spec_version": 1, "provider": "x", "auth": {"scheme": "bearer"}, "event_type": {"const": "price"},
        "events": {"price": {"commands": [{"type": "UpdatePrice", "each": "rows", "fields": {
            "item_id": {"path": "@.sku", "resolve": "item"}, "external_item_id": {"path": "@.sku"},
            "amount_minor": {"path": "@.price", "as": "money_major", "currency": {"path": "cur"}},
            "currency": {"path": "cur"}}}]}}}))
    body = {"cur": "KWD", "rows": [{"sku": "a", "price": "1.2345"}, {"sku": "b", "price": 0.1}]}
    case = Case("x", "edge", Path("."), json.dumps(body).encode(), {}, {})
    adapter = spec_adapter(spec)(["s"])
    out, _ = _run(adapter, case)
    assert [(c["externalItemId"], c["amountMinor"]) for c in out] == [("a", 1235), ("b", 100)]


def test_drafts_are_marked_unverified() -> None:
    assert not PosistAdapter.spec.verified and not DotPeAdapter.spec.verified
    assert (PosistAdapter.provider, DotPeAdapter.provider) == ("posist", "dotpe")


def test_unmapped_enum_value_is_unparseable_and_unknown_event_acknowledged() -> None:
    case = next(c for c in load_cases("posist") if c.name == "outlet_status")
    body = json.loads(case.body) | {"status": "exploded"}
    with pytest.raises(UnparseablePayload):
        PosistAdapter(["s"]).parse(replace(case, body=json.dumps(body).encode()).delivery())
    with pytest.raises(UnsupportedEvent):
        PosistAdapter(["s"]).parse(replace(case, body=b'{"event": "menu_push"}').delivery())
