"""The support search projection: which values of a body count as vendor ids, and the cap on them."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from ingest.adapters.base import Headers, RawDelivery
from ingest.canonical.mapping import MappingKey
from ingest.rawsearch import _MAX_IDS, DOC_MAX_BYTES, search_row


def _row(body: object, keys: tuple[MappingKey, ...] = ()) -> dict:  # type: ignore[type-arg]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    d = RawDelivery(body=raw, headers=Headers({}), raw_id="r1", tenant_id="acme", provider="shopify",
                    family="inventory", received_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    return search_row(d, keys)


def test_scalars_under_id_named_keys_any_case_and_depth_lists_under_their_key() -> None:
    body = {"ID": 7, "Item_Id": "A1", "name": "not-an-id", "line_items": [{"sku": "S1", "qty": 3}],
            "skus": ["x"], "order_no": ["N1", ["N2", {"nested": "no", "code": "C1"}]], "active_id": True,
            "price_id": 1.5, "store_code": "", "barcode": "b" * 201, "meta": {"inner": {"store_code": "K"}}}
    assert _row(body)["ext_ids"] == ["7", "A1", "C1", "K", "N1", "N2", "S1"]


def test_keys_count_and_a_non_json_or_large_body_keeps_only_them() -> None:
    keys = (MappingKey("item", "A1"), MappingKey("store", "S"))
    assert _row(b"sku,qty\nA1,3\n", keys) == {
        "raw_id": "r1", "received_at": "2026-01-02T00:00:00+00:00", "tenant_id": "acme", "provider": "shopify",
        "ext_ids": ["A1", "S"], "doc": None}
    large = {"id": "big", "pad": "x" * DOC_MAX_BYTES}
    assert _row(large, keys)["ext_ids"] == ["A1", "S"] and _row(large, keys)["doc"] is None
    assert _row(7)["doc"] is None and _row([{"id": 1}])["doc"] == [{"id": 1}]


def test_ids_stop_at_the_cap_in_document_order() -> None:
    body = {"first": [{"id": f"a{i:03}"} for i in range(_MAX_IDS - 2)], "then_id": ["b1", "a000", "b2", "b3"],
            "last_id": "c1"}
    ids = _row(body)["ext_ids"]
    assert len(ids) == _MAX_IDS and "b2" in ids and "b3" not in ids and "c1" not in ids
    keys = tuple(MappingKey("item", f"k{i}") for i in range(_MAX_IDS))
    assert _row({"id": "more"}, keys)["ext_ids"] == sorted(k.external_id for k in keys)
