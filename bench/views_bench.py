"""The views' own work per event: decode, fold, Redis apply, metrics — against the real local Redis.

``python bench/views_bench.py [--events N] [--batch B] [--repeat R] [--profile]`` builds N realistic public events
(StockLevelUpdated absolute and delta, PriceUpdated, CatalogItemUpserted, StoreStatusUpdated over a few hundred
entities) exactly as the command writer encodes and keys them (``event_of``, ``kafka_key``), then feeds them in
batches of B to the views consumer's own code with a fake Kafka consumer (no broker) and the real ``ViewStore``
on ``REDIS_URL`` under a unique key prefix (deleted afterwards). It prints CPU µs per event
(``time.process_time``: the machine is shared, wall clock means little), the minimum over R repeats, of

- ``decode``  — ``ViewsConsumer._decode`` (Kafka message → Event);
- ``read``    — ``ViewStore.load`` of the slots the batch touches (one pipelined round trip);
- ``fold``    — ``slots`` + ``plan`` (the pure handler: view documents and their JSON);
- ``write``   — ``ViewStore.write`` (the compare-and-set Lua script);
- ``metrics`` — ``ViewsConsumer._count``;
- ``apply``   — ``ViewStore.apply`` (read + fold + write as the consumer runs them: with the store's slot cache, a
  batch whose slots are all cached skips its read), a separate pass over the decoded events;
- ``total``   — ``ViewsConsumer._process`` end to end (decode → apply → metrics → commit), a separate pass.

The phase pass reads every batch's slots (it calls ``load``, ``plan`` and ``write`` itself); ``apply`` and ``total``
use the cache (``--cache-slots``, default the store's).

Every repeat writes into a fresh key prefix, so each pass applies every event (none is a duplicate).

A feed import (large batches of mostly new slots, one receivedAt): ``--batch 500 --items 20000 --cache-slots 1000
--feed`` (2 × 4 × 20,000 stock slots: nearly every slot is read once and the cache evicts all along).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import sys
import time
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fakes import FakeMessage  # noqa: E402
from ingest.canonical.commands import (  # noqa: E402
    CommandBase,
    UpdatePrice,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertCatalogItem,
)
from services.command_writer.handler import event_of, kafka_key  # noqa: E402
from services.views.consumer import ViewsConsumer  # noqa: E402
from services.views.handler import Keys, plan, slots  # noqa: E402
from services.views.store import ViewStore  # noqa: E402

PARTITIONS = 6
PREFIX = "bench."
TENANTS = ["bench-a", "bench-b"]
STORES = [f"store-{i}" for i in range(4)]
ITEMS = [f"item-{i:03d}" for i in range(80)]  # 2 tenants x 4 stores x 80 items: 640 stock slots, 160 items
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


class FakeKafka:
    def commit(self, offsets: Any = None, asynchronous: bool = True) -> None:
        return None


def command(rng: random.Random, seq: int, items: list[str]) -> CommandBase:
    tenant, store, item = rng.choice(TENANTS), rng.choice(STORES), rng.choice(items)
    at = T0 + timedelta(seconds=seq)
    common = dict(command_id=str(uuid.UUID(int=rng.getrandbits(128))), tenant_id=tenant, provider="inhouse-wms",
                  raw_id=str(uuid.UUID(int=rng.getrandbits(128))), occurred_at=at, received_at=at,
                  merchant_id="m-1", store_id=store)
    roll = rng.random()
    if roll < 0.35:
        return UpdateStockLevel(**common, item_id=item, external_item_id=f"SKU-{item}", mode="absolute",
                                quantity=str(rng.randint(0, 200)), unit="each", reason="snapshot")
    if roll < 0.70:
        return UpdateStockLevel(**common, item_id=item, external_item_id=f"SKU-{item}", mode="delta",
                                quantity=f"{rng.choice([-1, 1]) * rng.randint(1, 9)}.{rng.randint(0, 99):02d}",
                                unit="each", reason=rng.choice(["sale", "adjustment", "receiving"]))
    if roll < 0.85:
        return UpdatePrice(**common, item_id=item, external_item_id=f"SKU-{item}",
                           amount_minor=rng.randint(500, 99_900), currency="INR",
                           price_type=rng.choice(["base", "sale"]))
    if roll < 0.95:
        return UpsertCatalogItem(**{**common, "store_id": None}, item_id=item, external_item_id=f"SKU-{item}",
                                 name=f"Item {item} 500 ml", description="A realistic description of the item",
                                 brand="Amul", category="Dairy", gtin="8901234567890",
                                 image_urls=[f"https://cdn.example/{item}.jpg"],
                                 attributes={"uom": "each", "size": "500 ml"})
    return UpdateStoreStatus(**common, external_store_id=f"DS-{store}",
                             status=rng.choice(["OPEN", "BUSY", "CLOSED"]), busy_delay_minutes=15)


def messages(n: int, seed: int = 7, items: int = len(ITEMS), feed: bool = False) -> list[FakeMessage]:
    """Events as the command writer publishes them: keyed per entity, one partition per key, offsets in order.

    ``feed``: every event received (and occurred) at the same time, as the rows of one feed import.
    """
    rng = random.Random(seed)
    names = ITEMS if items == len(ITEMS) else [f"item-{i:06d}" for i in range(items)]
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for seq in range(n):
        rec = command(rng, 0 if feed else seq, names).to_record()
        topic, event_type, value = event_of(str(rec["commandType"]), rec)
        key = kafka_key(rec)
        part = zlib.crc32(key.encode()) % PARTITIONS
        offset = offsets[(topic, part)] = offsets.get((topic, part), -1) + 1
        headers = [("raw-id", str(rec["rawId"]).encode()), ("tenant-id", str(rec["tenantId"]).encode()),
                   ("provider", str(rec["provider"]).encode()), ("type", event_type.encode()),
                   ("command-id", str(rec["commandId"]).encode())]
        out.append(FakeMessage(PREFIX + topic, part, offset, key.encode(), value, headers))
    return out


def consumer(store: ViewStore) -> ViewsConsumer:
    """The real consumer's batch code without its Kafka client (``run`` is not called)."""
    settings = SimpleNamespace(views_recent_commands=16, topic=lambda t: PREFIX + t)
    c = ViewsConsumer(settings, store, kafka=FakeKafka())  # type: ignore[arg-type]
    c.epoch = 0
    return c


def phases(store: ViewStore, msgs: list[FakeMessage], batch: int, prof: cProfile.Profile | None) -> dict[str, float]:
    c = consumer(store)
    keys = Keys(store.base, 0)
    spent = dict.fromkeys(("decode", "read", "fold", "write", "metrics"), 0.0)
    for start in range(0, len(msgs), batch):
        chunk = msgs[start:start + batch]
        if prof:
            prof.enable()
        t0 = time.process_time()
        events = c._decode(chunk)  # type: ignore[arg-type]
        t1 = time.process_time()
        current = store.load(slots(events, keys))
        t2 = time.process_time()
        folded = plan(events, current, keys, recent=16)
        t3 = time.process_time()
        outcome = store.write(folded, keys.epoch)
        t4 = time.process_time()
        c._count(folded, events)
        t5 = time.process_time()
        if prof:
            prof.disable()
        assert outcome == 0, outcome
        for name, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            spent[name] += took
    return spent


def applied(store: ViewStore, msgs: list[FakeMessage], batch: int) -> float:
    c = consumer(store)
    keys = Keys(store.base, 0)
    took = 0.0
    for start in range(0, len(msgs), batch):
        events = c._decode(msgs[start:start + batch])  # type: ignore[arg-type]
        t0 = time.process_time()
        outcome, _ = store.apply(events, keys, recent=16)
        took += time.process_time() - t0
        assert outcome == 0, outcome
    return took


def total(store: ViewStore, msgs: list[FakeMessage], batch: int) -> float:
    c = consumer(store)
    t0 = time.process_time()
    for start in range(0, len(msgs), batch):
        c._process(msgs[start:start + batch])  # type: ignore[arg-type]
    took = time.process_time() - t0
    assert c.applied == len(msgs), (c.applied, len(msgs))
    return took


def check(store: ViewStore) -> dict[str, Any]:
    """A sample of what the pass left in Redis (the same for every version of the code on the same events)."""
    keys = Keys(store.base, 0)
    raw = store.client.hgetall(keys.availability(TENANTS[0], STORES[0]))
    docs = {f: json.loads(v) for f, v in raw.items()}
    return {"slots": len(docs), "quantities": sorted((f, d["quantity"], d["available"]) for f, d in docs.items())[:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--cache-slots", type=int, default=None, help="the ViewStore's slot cache (0: none)")
    ap.add_argument("--items", type=int, default=len(ITEMS),
                    help="items per tenant (default 80: slots repeat; e.g. 20000 with --cache-slots 1000: a feed "
                         "import's mostly new slots, the cache evicting)")
    ap.add_argument("--feed", action="store_true", help="one receivedAt/occurredAt for every event (a feed import)")
    ap.add_argument("--profile", action="store_true", help="cProfile the phase passes (top 35 by tottime)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    msgs = messages(args.events, items=args.items, feed=args.feed)
    run_id = uuid.uuid4().hex[:12]
    best: dict[str, float] = {}
    prof = cProfile.Profile() if args.profile else None
    sample: dict[str, Any] = {}
    for r in range(args.repeat):
        for mode in ("phases", "apply", "total"):
            cache = {} if args.cache_slots is None else {"cache_slots": args.cache_slots}
            store = ViewStore.from_url(args.redis, f"bench:views:{run_id}:{r}:{mode}:", **cache)
            try:
                if mode == "phases":
                    spent = phases(store, msgs, args.batch, prof)
                    spent["sum"] = sum(spent.values())
                    sample = check(store)
                elif mode == "apply":
                    spent = {"apply": applied(store, msgs, args.batch)}
                    assert check(store) == sample, "the passes left different views"
                else:
                    spent = {"total": total(store, msgs, args.batch)}
                    assert check(store) == sample, "the passes left different views"
            finally:
                store.drop_everything()
                store.close()
            for name, took in spent.items():
                us = took / len(msgs) * 1e6
                best[name] = min(best.get(name, us), us)
    out = {"events": args.events, "batch": args.batch, "repeat": args.repeat, "items": args.items, "feed": args.feed,
           "cpu_us_per_event_min": {k: round(v, 1) for k, v in best.items()}, "sample": sample}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.events} events, batches of {args.batch}, min of {args.repeat} repeats — CPU µs per event:")
        for name, us in out["cpu_us_per_event_min"].items():
            print(f"  {name:8s} {us:7.1f}")
        print(f"  sample   {sample['slots']} slots in {TENANTS[0]}/{STORES[0]}, {sample['quantities'][:3]}")
    if prof:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(35)


if __name__ == "__main__":
    main()
