"""Atlas Kitchen edge cases: custom-header auth, dedupe identity, pulled menus."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.adapters.atlas import AtlasAdapter
from ingest.errors import InvalidSignature, UnparseablePayload
from tests.adapters.cases import Case, load_cases

CASES = {c.name: c for c in load_cases("atlas")}


def _case(body: object, headers: dict[str, str] | None = None, **meta: object) -> Case:
    return Case("atlas", "edge", Path("."), json.dumps(body).encode(), headers or {}, dict(meta))


def test_custom_header_scheme() -> None:
    adapter = AtlasAdapter(["tok"], options={"header_name": "X-Atlas-Secret"})
    adapter.verify_signature({"X-Atlas-Secret": "tok"}, b"{}")
    with pytest.raises(InvalidSignature):
        adapter.verify_signature({"Authorization": "Bearer tok"}, b"{}")


def test_stock_events_differing_only_in_availability_are_distinct() -> None:
    body = json.loads(CASES["stock.updated"].body)
    first = AtlasAdapter(["s"]).parse(_case(body).delivery()).event_id
    body["payload"]["is_available"] = True
    assert AtlasAdapter(["s"]).parse(_case(body).delivery()).event_id != first


def test_menu_updated_names_what_to_pull() -> None:
    source = AtlasAdapter(["s"]).parse(CASES["menu.updated"].delivery())
    assert source.refetch == "GET /admin/v1/menus/8921"


def test_merchant_header_on_pulled_menu_becomes_the_merchant() -> None:
    case = _case(json.loads(CASES["menu.detail"].body), {"X-Merchant-Id": "m-7"}, route="pull")
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    assert "merchant:m-7" in {str(k) for k in adapter.mapping_keys(source)}


def test_draft_menu_is_not_on_sale() -> None:
    body = json.loads(CASES["menu.detail"].body) | {"state": "draft"}
    case = _case(body, route="pull")
    adapter = case.adapter()
    assert adapter.to_canonical_commands(adapter.parse(case.delivery()), case.context(frozenset())) == []


def test_stock_without_outlet_is_unparseable() -> None:
    with pytest.raises(UnparseablePayload):
        AtlasAdapter(["s"]).parse(_case({"event_type": "stock.updated", "event_at": 1,
                                         "payload": {"item_id": 1, "is_available": True}}).delivery())
