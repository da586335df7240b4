"""The pure fold without Redis: stored JSON byte for byte as before, one document per slot and batch."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ingest.avro import codec
from services.views.handler import Event, Keys, apply, dumps, iso, loads, plan, slots

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
KEYS = Keys("test:views:handler:", 0)

#: what a view document holds: the event schemas' strings, longs, booleans, nulls, arrays and maps
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


def reference(doc: Any) -> str:
    """How view documents were serialised before orjson."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@given(JSONISH)
def test_dumps_is_byte_for_byte_the_standard_library(doc: Any) -> None:
    assert dumps(doc) == reference(doc)
    assert loads(dumps(doc)) == doc


def test_what_orjson_refuses_is_still_serialised_and_read_as_before() -> None:
    for doc in ({"n": 2**70}, {1: "int key"}, {"s": "lone \ud800 surrogate"}):
        assert dumps(doc) == reference(doc)
    assert loads('{"s":"\\ud800"}') == json.loads('{"s":"\\ud800"}')


def event(offset: int, mode: str, qty: str | None, *, item: str = "item-1", available: bool = True) -> Event:
    base = {"eventId": str(uuid.uuid4()), "eventType": "StockLevelUpdated", "commandId": str(uuid.uuid4()),
            "commandType": "UpdateStockLevel", "tenantId": "acme", "provider": "inhouse-wms",
            "rawId": str(uuid.uuid4()), "occurredAt": T0, "receivedAt": T0, "merchantId": "m-1",
            "storeId": "store-1", "itemId": item, "externalItemId": f"SKU-{item}", "mode": mode, "quantity": qty,
            "unit": "each", "available": available, "reason": "adjustment"}
    return Event("inventory.events", 0, offset, "StockLevelUpdated",
                 codec().decode(codec().encode("StockLevelUpdated", base))[1])


def test_availability_follows_the_level_after_a_delta() -> None:
    doc = apply(None, event(1, "absolute", "2"))
    for offset, qty, level, available in ((2, "-1.5", "0.5", True), (3, "-0.5", "0", False), (4, "-1", "-1", False),
                                          (5, None, "-1", False), (6, "3", "2", True), (7, None, "2", True)):
        doc = apply(doc, event(offset, "delta", qty))
        assert (doc["quantity"], doc["available"]) == (level, available), offset
    assert apply(None, event(1, "delta", "5"))["quantity"] is None
    assert apply(None, event(1, "delta", "5"))["available"] is True


def test_a_slot_updated_several_times_in_a_batch_is_written_once_with_the_last_document() -> None:
    events = [event(1, "absolute", "10"), event(2, "delta", "-3"), event(3, "absolute", "4", item="item-2"),
              event(4, "delta", "1")]
    batch = plan(events, dict.fromkeys(slots(events, KEYS)), KEYS)
    assert [s.field for s in batch.writes] == ["item-1", "item-2"]
    old, new = batch.writes[next(iter(batch.writes))]
    assert old is None and json.loads(new)["quantity"] == "8" and json.loads(new)["_o"] == {"inventory.events:0": 4}
    assert batch.members == {(KEYS.item_stores("acme", "item-1"), '["store-1","item-1"]'),
                             (KEYS.item_stores("acme", "item-2"), '["store-1","item-2"]')}

    # folded over what the first batch stored: the re-delivered events are duplicates, the new one applies
    stored = {slot: new for slot, (_, new) in batch.writes.items()}
    again = plan([*events[2:], event(5, "delta", "-8")], stored, KEYS)
    assert again.duplicates == 2 and [s.field for s in again.writes] == ["item-1"]
    assert json.loads(again.writes[next(iter(again.writes))][1])["quantity"] == "0"


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: the datetime is naive for comparisons, yet ``iso`` reads it as local time."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None


def _iso_before(value: Any) -> str | None:
    """``iso`` as it was before its memo."""
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return str(value)


ZONES = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=3)),
                         ZoneInfo("Europe/London"), ZoneInfo("America/New_York"), _NoOffset()])


@given(st.lists(st.tuples(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)), ZONES,
                          st.booleans()), max_size=30))
def test_iso_memo_answers_as_formatting_each_time(values: list[tuple[datetime, Any, bool]]) -> None:
    """Equal datetimes of any zones (a naive one, a folded hour, one without offset among them) and repeats."""
    made = [naive.replace(tzinfo=zone, fold=int(fold)) for naive, zone, fold in values]
    for value in made + made[::-1] + [v.astimezone(timezone.utc) for v in made if v.utcoffset() is not None]:
        assert iso(value) == _iso_before(value), value


def test_iso_memo_takes_runs_of_one_time_text_and_none_as_before() -> None:
    naive = datetime(2025, 3, 1, 10, 0)
    ist = timezone(timedelta(hours=5, minutes=30))
    run = [T0] * 3 + [T0.astimezone(ist), T0.replace(tzinfo=None), T0.replace(tzinfo=_NoOffset()), T0,
                      T0 + timedelta(microseconds=1), naive, naive.replace(tzinfo=_NoOffset()), naive, T0]
    assert [iso(v) for v in run] == [_iso_before(v) for v in run]
    assert iso(None) is None and iso("2025-03-01T10:00:00Z") == "2025-03-01T10:00:00Z"
