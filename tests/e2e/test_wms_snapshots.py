"""Full in-house WMS stock snapshots end to end: unlisted SKUs of the facility go to 0, guarded."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import WMS_SECRET, send_wms, wms_adjusted, wms_snapshot
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e


def _accepted(stack: Stack, tenant: str, body: bytes) -> str:
    status, payload = send_wms(stack.receiver, tenant, body)
    assert status == 202, payload
    return str(payload["rawId"])


def _stock_events(stack: Stack, raw_ids: set[str], until: Any) -> list[dict[str, Any]]:
    events = stack.consume("inventory.events", until=lambda rs: until([r for r in rs if r["rawId"] in raw_ids]))
    return [e for e in events if e["rawId"] in raw_ids]


def _command_counts(stack: Stack, raw_ids: set[str]) -> dict[str, int]:
    """Commands written per payload, from the command writer's outcomes (exact, whatever partition they went to)."""
    rows = stack.wait_for("SELECT raw_id::text AS raw_id, cardinality(command_ids) AS n FROM outcomes "
                          "WHERE raw_id = ANY($1::uuid[]) AND outcome = 'processed'", list(raw_ids),
                          check=lambda rs: len(rs) == len(raw_ids))
    return {r["raw_id"]: r["n"] for r in rows}


def _tenant_with_known_skus(stack: Stack, skus: str) -> str:
    """A tenant whose facility has stocked ``skus`` (each an adjustment whose event is already out)."""
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", WMS_SECRET)
    raw_ids = {_accepted(stack, tenant, wms_adjusted(sku, "7")) for sku in skus}
    seen = _stock_events(stack, raw_ids, lambda mine: len(mine) == len(skus))
    assert sorted(e["externalItemId"] for e in seen) == sorted(skus)
    return tenant


def test_two_page_full_snapshot_zeroes_the_known_sku_no_page_lists(stack: Stack) -> None:
    tenant = _tenant_with_known_skus(stack, "ABC")
    pages = {_accepted(stack, tenant, wms_snapshot("B", snapshot_id="SNAP-2P", page=2, page_count=2)),
             _accepted(stack, tenant, wms_snapshot("A", snapshot_id="SNAP-2P", page=1, page_count=2))}

    def zeroed(mine: list[dict[str, Any]]) -> bool:
        return any(e["externalItemId"] == "C" for e in mine)

    events = _stock_events(stack, pages, lambda mine: zeroed(mine) and len(mine) >= 3)
    by_sku = {e["externalItemId"]: e for e in events}
    assert sorted(by_sku) == ["A", "B", "C"] and len(events) == 3
    c = by_sku["C"]
    assert (c["mode"], c["quantity"], c["available"], c["reason"]) == ("absolute", "0", False, "snapshot")
    assert by_sku["A"]["quantity"] == by_sku["B"]["quantity"] == "5"
    assert c["rawId"] in pages and c["storeId"] == by_sku["A"]["storeId"]
    counts = _command_counts(stack, pages)  # the completing page: its own level and the zeroing; the other: one
    assert counts[c["rawId"]] == 2 and sum(counts.values()) == 3
    row = stack.query("SELECT verdict, zeroed, completed_by FROM stock_snapshots WHERE tenant_id = $1 "
                      "AND snapshot_id = 'SNAP-2P'", tenant)[0]
    assert (row["verdict"], row["zeroed"], row["completed_by"]) == ("zeroed", ["C"], c["rawId"])
    assert not stack.query("SELECT 1 FROM failures WHERE tenant_id = $1 AND reason_code LIKE 'snapshot%'", tenant)


def test_full_snapshot_zeroing_above_the_ratio_is_refused_and_reported(stack: Stack) -> None:
    tenant = _tenant_with_known_skus(stack, "ABC")
    raw_id = _accepted(stack, tenant, wms_snapshot("A", snapshot_id="SNAP-SHORT"))
    rows = stack.wait_for("SELECT class, stage, reason_code, message, details FROM failures WHERE raw_id = $1::uuid "
                          "AND reason_code = 'snapshot_zeroing_guard'", raw_id)
    assert (rows[0]["class"], rows[0]["stage"]) == ("validation", "mapper")
    assert "DS-BLR-KOR-01" in rows[0]["message"] and "SNAP-SHORT" in rows[0]["message"]
    assert "2 of 3" in rows[0]["message"]
    # the snapshot's own level still goes out, and nothing else
    events = _stock_events(stack, {raw_id}, bool)
    assert [(e["externalItemId"], e["quantity"]) for e in events] == [("A", "5")]
    assert _command_counts(stack, {raw_id}) == {raw_id: 1}
