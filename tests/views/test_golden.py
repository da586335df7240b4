"""Every Redis key and value the views write, byte for byte, against golden output of the code before the CPU work.

A varied, seeded event stream (every view event type and an ignored one, absolute/delta/availability-only stock,
variants, stores and none, unicode, sub-second and non-UTC timestamps, corrupt quantities, a redelivered offset,
a re-published command id, an older offset after a newer one, other partitions on the same slots) goes through

- ``ViewsConsumer._process`` on Avro messages (decode → apply → metrics → commit), batches of varied sizes,
  the store's default slot cache;
- ``ViewStore.apply`` on decoded events without a cache, and with a cache of a few slots (evictions);
- ``ViewStore.apply`` of one replica after another replica wrote some of its cached slots (conflicts),

and every key under the prefix (hashes field by field, sets member by member, strings) must equal
``golden/views_redis.json``. ``GOLDEN_WRITE=1 pytest tests/views/test_golden.py`` rewrites it (only ever from the
code the golden file is meant to pin).
"""
from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from ingest.avro import codec
from services.views.consumer import ViewsConsumer
from services.views.handler import Event, Keys
from services.views.store import ViewStore

REDIS_URL = "redis://127.0.0.1:6379/0"
GOLDEN = Path(__file__).parent / "golden" / "views_redis.json"
T0 = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
IST = timezone(timedelta(hours=5, minutes=30))
TOPIC_OF = {"StockLevelUpdated": "inventory.events", "PriceUpdated": "pricing.events",
            "CatalogItemUpserted": "catalog.events", "MenuItemUpserted": "catalog.events",
            "VariantUpserted": "catalog.events", "StoreStatusUpdated": "store-status.events",
            "OrderStatusUpdated": "store-status.events"}
TENANTS = ["acme", "zeta-ü"]
STORES = ["store-1", "store-2", "dark store ☕", None]
ITEMS = [f"item-{i:02d}" for i in range(24)] + ["item/odd", "ïtem-é"]


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self) -> str: return self._t
    def partition(self) -> int: return self._p
    def offset(self) -> int: return self._o
    def value(self) -> bytes: return self._v
    def error(self) -> None: return None


class FakeKafka:
    def __init__(self) -> None:
        self.committed: list[list[tuple[str, int, int]]] = []

    def commit(self, offsets: Any = None, asynchronous: bool = True) -> None:
        self.committed.append(sorted([tp.topic, tp.partition, tp.offset] for tp in offsets))


def _when(rng: random.Random, seq: int) -> datetime:
    at = T0 + timedelta(seconds=seq * 7, microseconds=rng.choice([0, 0, 1, 123_000, 999_999]))
    return at.astimezone(IST) if rng.random() < 0.2 else at


def _record(rng: random.Random, seq: int) -> tuple[str, dict[str, Any]]:
    tenant, store, item = rng.choice(TENANTS), rng.choice(STORES), rng.choice(ITEMS)
    variant = rng.choice([None, None, "v1", "v2"])
    base = {"eventId": str(uuid.UUID(int=rng.getrandbits(128))), "commandId": str(uuid.UUID(int=rng.getrandbits(128))),
            "commandType": "x", "tenantId": tenant, "provider": rng.choice(["inhouse-wms", "shopify", ""]),
            "rawId": str(uuid.UUID(int=rng.getrandbits(128))), "occurredAt": _when(rng, seq),
            "receivedAt": _when(rng, seq), "merchantId": rng.choice([None, "m-1"]), "storeId": store}
    roll = rng.random()
    if roll < 0.45:
        mode = rng.choice(["absolute", "delta", "delta"])
        qty = rng.choice([None, str(rng.randint(0, 50)), f"{rng.randint(-9, 9)}.{rng.randint(0, 99):02d}", "1e2",
                          "-0.000", "12.50"] + (["abc"] if rng.random() < 0.1 else []))
        again = _when(rng, seq + 100) if rng.random() < 0.3 else None
        return "StockLevelUpdated", {**base, "itemId": item, "externalItemId": f"SKU-{item}", "variantId": variant,
                                     "mode": mode, "quantity": qty, "unit": rng.choice([None, "each", "kg"]),
                                     "available": rng.random() < 0.8, "reason": rng.choice(["sale", "snapshot"]),
                                     "availableAgainAt": again}
    if roll < 0.60:
        return "PriceUpdated", {**base, "itemId": item, "externalItemId": f"SKU-{item}", "variantId": variant,
                                "amountMinor": rng.randint(0, 2**40), "currency": rng.choice(["INR", "EUR"]),
                                "priceType": rng.choice(["base", "sale"])}
    if roll < 0.70:
        return "CatalogItemUpserted", {**base, "itemId": item, "externalItemId": f"SKU-{item}",
                                       "name": rng.choice(["Milk 500 ml", "Dahi \"fresh\" ☕", "tab\tnew\nline"]),
                                       "description": rng.choice([None, "desc", "é" * 3]), "brand": "Amul",
                                       "category": None, "gtin": rng.choice([None, "8901234567890"]),
                                       "imageUrls": [f"https://cdn.example/{item}.jpg"] * rng.randint(0, 2),
                                       "attributes": {"size": "500 ml", "z": "ü"} if rng.random() < 0.5 else {},
                                       "active": rng.random() < 0.9}
    if roll < 0.78:
        groups = [{"name": "Size", "min": 0, "max": 1,
                   "options": [{"externalItemId": "opt-1", "name": "Large", "amountMinor": 2000}]}]
        return "MenuItemUpserted", {**base, "menuId": rng.choice([None, "menu-1"]), "itemId": item,
                                    "externalItemId": f"SKU-{item}", "name": "Paneer", "description": None,
                                    "category": "Mains", "amountMinor": rng.choice([None, 25000]),
                                    "currency": "INR", "modifierGroups": groups if rng.random() < 0.5 else [],
                                    "available": rng.random() < 0.7}
    if roll < 0.86:
        return "VariantUpserted", {**base, "itemId": item, "variantId": variant or "v0", "externalVariantId": "X-1",
                                   "name": rng.choice([None, "1 kg"]), "attributes": {"w": "1kg"}, "gtin": None}
    if roll < 0.95:
        return "StoreStatusUpdated", {**base, "externalStoreId": f"DS-{store}", "status": rng.choice(["OPEN", "BUSY"]),
                                      "busyDelayMinutes": rng.choice([None, 15]),
                                      "until": _when(rng, seq + 50) if rng.random() < 0.5 else None}
    return "OrderStatusUpdated", {**base, "orderId": "o-1", "externalOrderId": "EO-1", "status": "READY"}


def stream(seed: int = 11, n: int = 1500) -> list[tuple[str, int, int, bytes]]:
    """(topic, partition, offset, Avro value) in delivery order, redeliveries and re-publications included."""
    rng = random.Random(seed)
    offsets: dict[tuple[str, int], int] = {}
    out: list[tuple[str, int, int, bytes]] = []
    for seq in range(n):
        schema, rec = _record(rng, seq)
        topic = TOPIC_OF[schema]
        part = sum(map(ord, f"{rec['tenantId']}{rec.get('itemId')}")) % 3  # one entity, one partition
        if rng.random() < 0.03:
            part = 3  # another partition writes the same slots (a re-keyed producer, a rebalance)
        offset = offsets[(topic, part)] = offsets.get((topic, part), -1) + 1
        value = codec().encode(schema, {**rec, "eventType": schema})
        out.append((topic, part, offset, value))
        roll = rng.random()
        if out and roll < 0.05:  # a redelivery of an earlier message (same offset)
            out.append(out[rng.randrange(len(out))])
        elif roll < 0.08:  # the same command re-published under a new offset
            offset = offsets[(topic, part)] = offsets[(topic, part)] + 1
            out.append((topic, part, offset, value))
        elif roll < 0.10 and len(out) > 5:  # an older offset after newer ones (out of order)
            t, p, o, v = out[-rng.randint(2, 5)]
            out.append((t, p, o, v))
    return out


def chunks(items: list[Any], seed: int) -> Iterator[list[Any]]:
    rng = random.Random(seed)
    at = 0
    while at < len(items):
        size = rng.choice([1, 2, 5, 17, 64, 250, 500])
        yield items[at:at + size]
        at += size


def snapshot(store: ViewStore) -> dict[str, Any]:
    out: dict[str, Any] = {}
    c = store.client
    for key in sorted(c.scan_iter(match=f"{store.base}*", count=1000)):
        name = "<base>" + key[len(store.base):]
        kind = c.type(key)
        if kind == "hash":
            out[name] = dict(sorted(c.hgetall(key).items()))
        elif kind == "set":
            out[name] = sorted(c.smembers(key))
        else:
            out[name] = c.get(key)
    return out


@pytest.fixture
def stores() -> Iterator[Any]:
    made: list[ViewStore] = []

    def make(base: str | None = None, **kw: Any) -> ViewStore:
        s = ViewStore.from_url(REDIS_URL, base or f"test:views:golden:{uuid.uuid4().hex}:", **kw)
        made.append(s)
        return s

    try:
        make().client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is expected at 127.0.0.1:6379")
    try:
        yield make
    finally:
        for s in made:
            s.drop_everything()
            s.close()


def consumer(store: ViewStore) -> ViewsConsumer:
    settings = SimpleNamespace(views_recent_commands=16, topic=lambda t: "g." + t)
    c = ViewsConsumer(settings, store, kafka=FakeKafka())  # type: ignore[arg-type]
    c.epoch = 0
    return c


def events_of(batch: list[tuple[str, int, int, bytes]]) -> list[Event]:
    out = []
    for topic, part, offset, value in batch:
        schema, rec = codec().decode(value)
        out.append(Event(topic, part, offset, schema, rec))
    return out


def check(found: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    if os.environ.get("GOLDEN_WRITE") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"redis": found, **(extra or {})}, indent=1, ensure_ascii=False,
                                     sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert len(found) == len(golden["redis"])
    for key, value in golden["redis"].items():
        assert found.get(key) == value, key
    assert found == golden["redis"]
    for name, value in (extra or {}).items():
        assert value == golden[name], name


def test_the_consumer_writes_exactly_the_golden_views(stores: Any) -> None:
    s = stores()
    c = consumer(s)
    msgs = [FakeMessage("g." + t, p, o, v) for t, p, o, v in stream()]
    for batch in chunks(msgs, 1):
        c._process(batch)  # type: ignore[arg-type]
    check(snapshot(s), {"applied": c.applied, "commits": c.consumer.committed})  # type: ignore[attr-defined]


@pytest.mark.parametrize("cache_slots", [0, 7, 10_000])
def test_apply_without_and_with_a_small_cache_writes_the_same_views(stores: Any, cache_slots: int) -> None:
    s = stores(cache_slots=cache_slots)
    keys = Keys(s.base, 0)
    for batch in chunks(stream(), 2):
        assert s.apply(events_of(batch), keys)[0] == 0
    check(snapshot(s))


def test_a_replica_behind_another_replans_and_writes_the_same_views(stores: Any) -> None:
    """Two stores on one prefix take turns (a rebalance back and forth): each one's cache goes stale."""
    a = stores()
    b = stores(a.base)
    keys = Keys(a.base, 0)
    for i, batch in enumerate(chunks(stream(), 3)):
        events = events_of(batch)
        outcome, _ = (a if i % 3 else b).apply(events, keys)
        if outcome > 0:  # a conflict with what Redis held (not the cache): plan again, as the consumer does
            outcome, _ = (a if i % 3 else b).apply(events, keys)
        assert outcome == 0
    check(snapshot(a))
