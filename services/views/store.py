"""Redis I/O of the views: one read and one atomic write per batch, generations for rebuilds, the read queries."""
from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import islice
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from redis import exceptions as rx

from ingest.errors import DependencyUnavailable
from services.views.handler import Event, Keys, Plan, Slot, dumpb, event_slots, plan, public

#: what redis-py raises while Redis is down, loading its dataset or failing over: block and retry
REDIS_OUTAGE: tuple[type[Exception], ...] = (rx.ConnectionError, rx.TimeoutError, rx.BusyLoadingError,
                                             rx.ReadOnlyError, rx.TryAgainError, rx.MasterDownError,
                                             OSError)

# One batch, all or nothing: the epoch must still be the one the batch was planned against (a rebuild
# did not start meanwhile), every slot must still hold what the plan read (another replica did not write it
# during a rebalance; Redis did not lose it) — the slots it writes (``cas``) and those it only checks
# (``check``: planned from the store's cache, unchanged by the batch) — then every document, index member and
# partition epoch is written.
# Returns 0 when applied, -1 when the epoch moved, i > 0 when the i-th compare failed.
APPLY_LUA = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return -1 end
local plan = cjson.decode(ARGV[2])
for i, op in ipairs(plan.cas) do
  local cur = redis.call('HGET', KEYS[op[1]], op[2]) or ''
  if cur ~= op[3] then return i end
end
for i, op in ipairs(plan.check) do
  local cur = redis.call('HGET', KEYS[op[1]], op[2]) or ''
  if cur ~= op[3] then return #plan.cas + i end
end
for _, op in ipairs(plan.cas) do redis.call('HSET', KEYS[op[1]], op[2], op[4]) end
for _, op in ipairs(plan.sadd) do redis.call('SADD', KEYS[op[1]], op[2]) end
for _, f in ipairs(plan.parts) do redis.call('HSET', KEYS[2], f, ARGV[1]) end
return 0
"""

# Every slot a batch touches in one command: ARGV[1] is a JSON array of [key index into KEYS, field]; the
# answer is one JSON array of the stored documents (false where absent), so neither side handles a reply per slot.
LOAD_LUA = """
local out = {}
for i, op in ipairs(cjson.decode(ARGV[1])) do out[i] = redis.call('HGET', KEYS[op[1]], op[2]) end
return cjson.encode(out)
"""


def outage(exc: Exception) -> DependencyUnavailable:
    err = DependencyUnavailable(f"redis unavailable: {type(exc).__name__}: {exc}", reason_code="redis_unavailable")
    err.__cause__ = exc
    return err


class ViewStore:
    """Synchronous Redis access for the consumer thread and the CLI.

    ``cache_slots`` > 0 keeps that many slots' documents as this store last wrote or read them, so a batch
    whose slots are all known skips the read round trip. A cached document is never trusted: the batch's
    write compares every slot planned from the cache with Redis — those it writes and those in which it only
    found duplicates — atomically, as it does the slots it read. Any difference (another replica wrote,
    Redis lost its data) fails the write; the batch's slots are forgotten and it is planned again at once
    from what Redis holds, so ``apply`` answers exactly as it would without the cache.
    """

    def __init__(self, client: redis.Redis, base: str, *, cache_slots: int = 10_000) -> None:
        self.client = client
        self.base = base
        self.cache_slots = cache_slots
        self._known: dict[Slot, str | None] = {}  # insertion order = least recently written or read first
        self._apply = client.register_script(APPLY_LUA)
        self._load = client.register_script(LOAD_LUA)

    @classmethod
    def from_url(cls, url: str, base: str, *, cache_slots: int = 10_000) -> ViewStore:
        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, decode_responses=True),
                   base, cache_slots=cache_slots)

    def close(self) -> None:
        self.client.close()

    def epoch(self) -> int:
        try:
            return int(self.client.get(Keys.epoch_key(self.base)) or 0)
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc

    def keys(self) -> Keys:
        return Keys(self.base, self.epoch())

    def partition_epochs(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in self.client.hgetall(Keys.parts_key(self.base)).items()}
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc

    def load(self, slots: Iterable[Slot]) -> dict[Slot, str | None]:
        """Every slot's stored document in one round trip."""
        wanted = list(slots)
        if not wanted:
            return {}
        index: dict[str, int] = {}
        at = index.setdefault  # a key's 1-based position in KEYS, added when new (see _script_keys)
        wanted_at = dumpb([[at(s.key, len(index) + 1), s.field] for s in wanted])
        try:
            found = orjson.loads(self._load(keys=_script_keys(index), args=[wanted_at]))
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc
        return {s: None if doc is False else doc for s, doc in zip(wanted, found)}

    def write(self, plan: Plan, epoch: int, *, check: dict[Slot, str | None] | None = None) -> int:
        """Apply ``plan`` atomically: 0 applied, -1 the epoch moved, > 0 a slot changed since it was read.

        ``check``: further slots that must still hold these documents (None: absent) for the plan to apply.
        """
        index = {Keys.epoch_key(self.base): 1, Keys.parts_key(self.base): 2}
        at = index.setdefault  # a key's 1-based position in KEYS, added when new (see _script_keys)
        # one JSON argument (orjson, in C) costs far less to send than four redis-py arguments per slot
        body = {"cas": [[at(s.key, len(index) + 1), s.field, old or "", new] for s, (old, new) in plan.writes.items()],
                "check": [[at(s.key, len(index) + 1), s.field, doc or ""] for s, doc in (check or {}).items()],
                "sadd": [[at(key, len(index) + 1), member] for key, member in sorted(plan.members)],
                "parts": sorted(plan.positions)}
        try:
            return int(self._apply(keys=_script_keys(index), args=[str(epoch), dumpb(body)]))
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc

    def apply(self, events: list[Event], keys: Keys, *, recent: int = 16) -> tuple[int, Plan]:
        """Read the slots ``events`` touch, fold the events over them, write the result atomically.

        Returns ``write``'s outcome (0 applied; -1 epoch moved; > 0 conflict: nothing written) and the plan.
        Slots in the cache are not read; a compare that fails on one of them is retried at once from Redis,
        so a conflict returned is one with what Redis held, as without the cache.
        """
        at = event_slots(events, keys)
        wanted = {s for s in at if s is not None}
        while True:
            known = self._known
            cached = {s: known[s] for s in wanted if s in known}
            loaded = self.load(s for s in wanted if s not in cached)
            batch = plan(events, {**cached, **loaded}, keys, recent=recent, at=at)
            try:
                outcome = self.write(batch, keys.epoch,
                                     check={s: doc for s, doc in cached.items() if s not in batch.writes})
            except BaseException:
                self._forget(wanted)  # the write may or may not have landed
                raise
            if outcome == 0:
                self._remember(loaded, {s: new for s, (_, new) in batch.writes.items()}, cached)
            elif outcome == -1:
                self._known.clear()  # a new generation: these keys are not read again
            else:
                self._forget(wanted)
                if cached:
                    continue  # planned on what the cache held: plan again on what Redis holds
            return outcome, batch

    def _remember(self, loaded: dict[Slot, str | None], written: dict[Slot, str],
                  cached: dict[Slot, str | None]) -> None:
        """After a batch: the slots it read and those it wrote are the most recent (``loaded`` were not known)."""
        if self.cache_slots <= 0:
            return
        known = self._known
        for s in written.keys() & cached.keys():
            del known[s]  # re-inserted last
        known.update(loaded)
        known.update(written)
        excess = len(known) - self.cache_slots
        if excess > 0:
            # the oldest in one pass: deleting one at a time from the front rescans the holes left before it
            for s in list(islice(known, excess)):
                del known[s]

    def _forget(self, wanted: Iterable[Slot]) -> None:
        for s in wanted:
            self._known.pop(s, None)

    def start_rebuild(self) -> tuple[int, int]:
        """A new, empty generation; the old ones are deleted. Consumers re-read every partition into it."""
        try:
            epoch = int(self.client.incr(Keys.epoch_key(self.base)))
            return epoch, self.delete_generations(before=epoch)
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc

    def delete_generations(self, *, before: int) -> int:
        deleted = 0
        batch: list[str] = []
        for key in self.client.scan_iter(match=f"{self.base}*", count=1000):
            head = key[len(self.base):].split(":", 1)[0]
            if head.isdigit() and int(head) < before:
                batch.append(key)
            if len(batch) >= 500:
                deleted += int(self.client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(self.client.unlink(*batch))
        return deleted

    def drop_everything(self) -> int:
        """Every key under the base, epoch and partition markers included (tests; never the running service)."""
        keys = list(self.client.scan_iter(match=f"{self.base}*", count=1000))
        return int(self.client.unlink(*keys)) if keys else 0


def _script_keys(index: dict[str, int]) -> list[bytes]:
    """A script's KEYS (``index``: key → its 1-based position, in insertion order) as the UTF-8 bytes redis-py would
    send: its encoder passes bytes through, where each str key costs a Python call (a batch names hundreds)."""
    return [key.encode() for key in index]


def _docs(raw: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {k: public(json.loads(v)) for k, v in raw.items()}


class ViewReader:
    """Asynchronous reads for the HTTP API (a few round trips per request, pipelined)."""

    def __init__(self, client: aioredis.Redis, base: str) -> None:
        self.client = client
        self.base = base

    @classmethod
    def from_url(cls, url: str, base: str) -> ViewReader:
        return cls(aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3,
                                           decode_responses=True), base)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except REDIS_OUTAGE:
            return False

    async def _keys(self) -> Keys:
        try:
            return Keys(self.base, int(await self.client.get(Keys.epoch_key(self.base)) or 0))
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc

    async def availability(self, tenant: str, store: str) -> list[dict[str, Any]]:
        keys = await self._keys()
        try:
            raw = await self.client.hgetall(keys.availability(tenant, store))
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc
        return sorted(_docs(raw).values(), key=lambda d: (d["itemId"], d.get("variantId") or ""))

    async def status(self, tenant: str, store: str) -> dict[str, Any] | None:
        keys = await self._keys()
        try:
            raw = await self.client.hget(keys.status(tenant), store)
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc
        return public(json.loads(raw)) if raw else None

    async def item(self, tenant: str, item: str) -> dict[str, Any] | None:
        """The catalog item, its menu entries, variants, current prices and availability in every store."""
        keys = await self._keys()
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(keys.item(tenant, item))
            pipe.hgetall(keys.prices(tenant, item))
            pipe.smembers(keys.item_stores(tenant, item))
            entries, prices, stores = await pipe.execute()
            pipe = self.client.pipeline(transaction=False)
            located = sorted(json.loads(m) for m in stores)
            for store, field in located:
                pipe.hget(keys.availability(tenant, store), field)
            found = await pipe.execute() if located else []
        except REDIS_OUTAGE as exc:
            raise outage(exc) from exc
        availability = [public(json.loads(raw)) for raw in found if raw]
        if not entries and not prices and not availability:
            return None
        docs = _docs(entries)
        return {
            "itemId": item,
            "catalog": docs.get("catalog"),
            "menus": [d for k, d in sorted(docs.items()) if k.startswith("menu:")],
            "variants": [d for k, d in sorted(docs.items()) if k.startswith("variant:")],
            "prices": sorted(_docs(prices).values(),
                             key=lambda d: (d.get("storeId") or "", d.get("variantId") or "", d["priceType"],
                                            d["currency"])),
            "availability": sorted(availability, key=lambda d: (d.get("storeId") or "", d.get("variantId") or "")),
        }
