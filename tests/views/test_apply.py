"""The views' apply logic against the real Redis: ordering, idempotency, delta vs absolute, atomic batches."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

from ingest.avro import codec
from services.views.handler import Event, Keys
from services.views.store import ViewReader, ViewStore

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def store() -> Iterator[ViewStore]:
    s = ViewStore.from_url(REDIS_URL, f"test:views:{uuid.uuid4().hex}:")
    try:
        s.client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is expected at 127.0.0.1:6379")
    try:
        yield s
    finally:
        s.drop_everything()
        s.close()


def record(schema: str, **fields: Any) -> dict[str, Any]:
    """A record as a consumer sees it: encoded with the published schema and decoded again."""
    base = {"eventId": str(uuid.uuid4()), "eventType": schema, "commandId": str(uuid.uuid4()),
            "commandType": "x", "tenantId": "acme", "provider": "inhouse-wms", "rawId": str(uuid.uuid4()),
            "occurredAt": T0, "receivedAt": T0, "merchantId": "m-1", "storeId": "store-1"}
    return codec().decode(codec().encode(schema, {**base, **fields}))[1]


def stock(offset: int, mode: str, qty: str | None, *, item: str = "item-1", available: bool = True,
          reason: str = "adjustment", partition: int = 0, **extra: Any) -> Event:
    rec = record("StockLevelUpdated", itemId=item, externalItemId=f"SKU-{item}", mode=mode, quantity=qty,
                 unit="each", available=available, reason=reason, occurredAt=T0 + timedelta(seconds=offset),
                 **extra)
    return Event("inventory.events", partition, offset, "StockLevelUpdated", rec)


def view(store: ViewStore, store_id: str = "store-1") -> dict[str, dict[str, Any]]:
    items = asyncio.run(_read(store, lambda r: r.availability("acme", store_id)))
    return {(d["itemId"] + (f"/{d['variantId']}" if d.get("variantId") else "")): d for d in items}


async def _read(store: ViewStore, fn: Any) -> Any:
    reader = ViewReader.from_url(REDIS_URL, store.base)
    try:
        return await fn(reader)
    finally:
        await reader.close()


def test_absolute_then_deltas_move_the_level_and_availability_follows_it(store: ViewStore) -> None:
    keys = store.keys()
    outcome, batch = store.apply([stock(1, "absolute", "10"), stock(2, "delta", "-3.5"), stock(3, "delta", "1.25")],
                                 keys)
    assert outcome == 0 and batch.applied == {"inventory.events": 3}
    doc = view(store)["item-1"]
    assert (doc["quantity"], doc["unit"], doc["available"], doc["reason"]) == ("7.75", "each", True, "adjustment")
    assert doc["updatedAt"] == "2025-03-01T10:00:03Z" and doc["storeId"] == "store-1"
    assert not any(k.startswith("_") for k in doc)  # idempotency markers are not served

    store.apply([stock(4, "delta", "-7.75", reason="sale")], keys)
    doc = view(store)["item-1"]
    assert (doc["quantity"], doc["available"], doc["reason"]) == ("0", False, "sale")

    store.apply([stock(5, "absolute", "4", reason="snapshot")], keys)  # an absolute replaces, whatever came before
    assert (view(store)["item-1"]["quantity"], view(store)["item-1"]["available"]) == ("4", True)


def test_a_redelivered_event_or_command_applies_once(store: ViewStore) -> None:
    keys = store.keys()
    first = stock(7, "delta", "5")
    store.apply([stock(6, "absolute", "1"), first], keys)
    assert view(store)["item-1"]["quantity"] == "6"

    # the same record again (a crash between the Redis write and the offset commit)
    outcome, batch = store.apply([first], keys)
    assert outcome == 0 and batch.duplicates == 1 and not batch.applied
    # the same command re-published at a later offset
    again = Event(first.topic, first.partition, 99, first.schema, first.record)
    outcome, batch = store.apply([again], keys)
    assert batch.duplicates == 1 and not batch.writes
    assert view(store)["item-1"]["quantity"] == "6"
    # a new command at a later offset still applies
    store.apply([stock(8, "delta", "-2")], keys)
    assert view(store)["item-1"]["quantity"] == "4"


def test_one_batch_folds_in_offset_order_per_entity(store: ViewStore) -> None:
    keys = store.keys()
    events = [stock(1, "delta", "3", item="a"),           # no level known yet: stays unknown
              stock(2, "absolute", "10", item="b"),
              stock(3, "absolute", "20", item="a"),
              stock(4, "delta", "-4", item="b"),
              stock(5, "delta", "-5", item="a"),
              stock(6, "absolute", "0", item="b", available=False)]
    store.apply(events, keys)
    v = view(store)
    assert (v["a"]["quantity"], v["a"]["available"]) == ("15", True)
    assert (v["b"]["quantity"], v["b"]["available"]) == ("0", False)

    store.drop_everything()
    keys = store.keys()
    store.apply(events[:1], keys)
    assert view(store)["a"]["quantity"] is None  # a lone delta does not invent a level


def test_availability_only_event_keeps_the_level_and_variants_are_their_own_entries(store: ViewStore) -> None:
    keys = store.keys()
    again = T0 + timedelta(hours=2)
    store.apply([stock(1, "absolute", "12"),
                 stock(2, "absolute", None, available=False, reason="snooze", availableAgainAt=again),
                 stock(3, "absolute", "2", variantId="v-red")], keys)
    v = view(store)
    assert (v["item-1"]["quantity"], v["item-1"]["available"], v["item-1"]["availableAgainAt"]) == \
        ("12", False, "2025-03-01T12:00:00Z")
    assert (v["item-1/v-red"]["quantity"], v["item-1/v-red"]["variantId"]) == ("2", "v-red")


def test_a_corrupt_quantity_is_rejected_alone(store: ViewStore) -> None:
    keys = store.keys()
    outcome, batch = store.apply([stock(1, "absolute", "5", item="x"), stock(2, "delta", "lots", item="x"),
                                  stock(3, "delta", "1", item="x")], keys)
    assert outcome == 0 and len(batch.rejected) == 1 and batch.applied == {"inventory.events": 2}
    assert view(store)["x"]["quantity"] == "6"


def test_the_write_is_all_or_nothing(store: ViewStore) -> None:
    keys = store.keys()
    store.apply([stock(1, "absolute", "5", item="x")], keys)
    # a rebuild started after the batch was planned: nothing of it lands
    store.client.incr(Keys.epoch_key(store.base))
    outcome, _ = store.apply([stock(2, "absolute", "9", item="x"), stock(3, "absolute", "1", item="y")], keys)
    assert outcome == -1
    assert set(view(store)) == set()  # the new generation is empty
    assert store.client.hget(keys.availability("acme", "store-1"), "y") is None
    assert '"quantity":"5"' in store.client.hget(keys.availability("acme", "store-1"), "x")
    # another writer changed a slot between read and write: the compare fails, nothing is written
    keys = store.keys()
    from services.views.handler import plan, slots

    events = [stock(4, "absolute", "3", item="x"), stock(5, "absolute", "4", item="y")]
    batch = plan(events, store.load(slots(events, keys)), keys)
    store.apply([stock(6, "absolute", "7", item="y")], keys)
    assert store.write(batch, keys.epoch) > 0
    assert ("x" not in view(store)) and view(store)["y"]["quantity"] == "7"


def test_status_catalog_prices_and_the_item_view(store: ViewStore) -> None:
    keys = store.keys()
    until = T0 + timedelta(hours=1)
    events = [
        Event("store-status.events", 0, 1, "StoreStatusUpdated",
              record("StoreStatusUpdated", externalStoreId="DS-1", status="BUSY", busyDelayMinutes=15)),
        Event("store-status.events", 0, 2, "StoreStatusUpdated",
              record("StoreStatusUpdated", externalStoreId="DS-1", status="PAUSED", until=until)),
        Event("catalog.events", 1, 1, "CatalogItemUpserted",
              record("CatalogItemUpserted", storeId=None, itemId="item-1", externalItemId="SKU-1", name="Milk 500ml",
                     brand="Amul", attributes={"uom": "each"})),
        Event("catalog.events", 1, 2, "VariantUpserted",
              record("VariantUpserted", storeId=None, itemId="item-1", variantId="v-1", externalVariantId="SKU-1-L",
                     name="Large")),
        Event("pricing.events", 0, 1, "PriceUpdated",
              record("PriceUpdated", itemId="item-1", externalItemId="SKU-1", amountMinor=2900, currency="INR",
                     priceType="base")),
        Event("pricing.events", 0, 2, "PriceUpdated",
              record("PriceUpdated", itemId="item-1", externalItemId="SKU-1", amountMinor=2700, currency="INR",
                     priceType="sale")),
        Event("pricing.events", 0, 3, "PriceUpdated",
              record("PriceUpdated", itemId="item-1", externalItemId="SKU-1", amountMinor=2500, currency="INR",
                     priceType="sale")),
        stock(1, "absolute", "8"),
        stock(2, "absolute", "3", storeId="store-2"),
    ]
    outcome, batch = store.apply(events, keys)
    assert outcome == 0
    assert batch.applied == {"store-status.events": 2, "catalog.events": 2, "pricing.events": 3,
                             "inventory.events": 2}

    status = asyncio.run(_read(store, lambda r: r.status("acme", "store-1")))
    assert (status["status"], status["busyDelayMinutes"], status["until"]) == ("PAUSED", None, "2025-03-01T11:00:00Z")
    item = asyncio.run(_read(store, lambda r: r.item("acme", "item-1")))
    assert item["catalog"]["name"] == "Milk 500ml" and item["catalog"]["brand"] == "Amul"
    assert [(v["variantId"], v["name"]) for v in item["variants"]] == [("v-1", "Large")]
    assert [(p["priceType"], p["currency"], p["amountMinor"]) for p in item["prices"]] == \
        [("base", "INR", 2900), ("sale", "INR", 2500)]
    assert [(a["storeId"], a["quantity"]) for a in item["availability"]] == [("store-1", "8"), ("store-2", "3")]
    assert asyncio.run(_read(store, lambda r: r.item("acme", "nope"))) is None
    assert asyncio.run(_read(store, lambda r: r.status("other", "store-1"))) is None


def test_start_rebuild_empties_the_views_and_deletes_the_old_generation(store: ViewStore) -> None:
    keys = store.keys()
    store.apply([stock(1, "absolute", "5")], keys)
    assert keys.epoch == 0 and view(store)
    epoch, deleted = store.start_rebuild()
    assert epoch == 1 and deleted == 2  # the availability hash and the item index
    assert view(store) == {}
    assert not list(store.client.scan_iter(match=f"{keys.root}*"))


def test_load_reads_every_slot_in_one_call_as_stored(store: ViewStore) -> None:
    """Stored bytes come back unchanged through the script's JSON (slashes, quotes, non-ASCII, control chars)."""
    from services.views.handler import Slot

    keys = store.keys()
    odd = '{"name":"Dahi \u2014 500 g / \\"fresh\\" \u00e9\u6f22\U0001f600\\n\\u0000","q":"1"}'
    store.client.hset(keys.item("acme", "i/1"), mapping={"catalog": odd, "variant:é": ""})
    wanted = [Slot(keys.item("acme", "i/1"), "catalog"), Slot(keys.item("acme", "i/1"), "nope"),
              Slot(keys.item("acme", "i/1"), "variant:é"), Slot(keys.status("acme"), "store-1")]
    assert store.load(wanted) == {wanted[0]: odd, wanted[1]: None, wanted[2]: "", wanted[3]: None}
    assert store.load([]) == {}


def test_the_slot_cache_skips_reads_but_never_outlives_what_redis_holds(store: ViewStore) -> None:
    keys = store.keys()
    reads: list[int] = []
    load = store.load
    store.load = lambda wanted: (lambda w: (reads.append(len(w)), load(w))[1])(list(wanted))  # type: ignore[method-assign]
    store.apply([stock(1, "absolute", "10"), stock(2, "absolute", "4", item="item-2")], keys)
    assert reads == [2]
    store.apply([stock(3, "delta", "-1")], keys)
    assert reads == [2, 0] and view(store)["item-1"]["quantity"] == "9"  # planned from the cache, no read

    # another writer changed the slot (a replica during a rebalance): the compare fails, the batch is planned
    # again from Redis at once, and its outcome is the one a read would have given
    other = ViewStore(store.client, store.base, cache_slots=0)
    other.apply([stock(4, "delta", "-4")], keys)
    outcome, batch = store.apply([stock(5, "delta", "+2")], keys)
    assert outcome == 0 and batch.applied == {"inventory.events": 1} and reads[-2:] == [0, 1]
    assert view(store)["item-1"]["quantity"] == "7"

    # Redis lost the slots: what the cache says was applied is applied again (not taken for a duplicate)
    store.client.delete(keys.availability("acme", "store-1"))
    outcome, batch = store.apply([stock(5, "delta", "+2")], keys)
    assert outcome == 0 and batch.duplicates == 0 and reads[-2:] == [0, 1]
    outcome, batch = store.apply([stock(6, "absolute", "4", item="item-2")], keys)
    assert outcome == 0 and batch.duplicates == 0
    assert (view(store)["item-1"]["quantity"], view(store)["item-2"]["quantity"]) == (None, "4")
    # ... and a re-delivery the cache and Redis agree on is a duplicate without a read
    outcome, batch = store.apply([stock(6, "absolute", "4", item="item-2")], keys)
    assert outcome == 0 and batch.duplicates == 1 and reads[-1] == 0


def test_the_slot_cache_is_bounded_and_dropped_with_its_generation(store: ViewStore) -> None:
    small = ViewStore(store.client, store.base, cache_slots=2)
    keys = small.keys()
    small.apply([stock(i, "absolute", str(i), item=f"i{i}") for i in range(1, 6)], keys)
    assert len(small._known) == 2
    small.start_rebuild()
    assert small.apply([stock(6, "absolute", "1", item="i5")], keys)[0] == -1 and not small._known
