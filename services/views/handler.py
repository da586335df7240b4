"""Pure view logic: which Redis entry an event updates, the entry after the event, a batch as one write plan.

Every view entry is a JSON document in a Redis hash field (one *slot*). A slot carries its own idempotency
marker: the last applied offset per ``topic:partition`` (``_o``) and its most recent command ids (``_c``),
so a re-delivered event (same offset) or a re-published one (same ``commandId``) is never applied twice.
Events of one entity share a partition (keys are ``{tenant}:{store or -}:{entity}``) and are folded in
offset order, so a delta always lands on the quantity that preceded it.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson

from ingest import topics
from ingest.canonical.units import QuantityError, quantity
from ingest.errors import InvalidCommand, UnsupportedEvent

#: the public topics the views read, and the event types each view understands
VIEW_TOPICS = (topics.INVENTORY_EVENTS, topics.CATALOG_EVENTS, topics.PRICING_EVENTS, topics.STORE_STATUS_EVENTS)
APPLIED_TYPES = {"StockLevelUpdated", "StoreStatusUpdated", "CatalogItemUpserted", "MenuItemUpserted",
                 "VariantUpserted", "PriceUpdated"}


class Event(NamedTuple):
    """One decoded record with its position (``topic`` without the TOPIC_PREFIX)."""

    topic: str
    partition: int
    offset: int
    schema: str
    record: dict[str, Any]

    @property
    def position(self) -> str:
        return f"{self.topic}:{self.partition}"


class Slot(NamedTuple):
    """One view entry: a field of a Redis hash."""

    key: str
    field: str


class Keys:
    """Redis key names of one generation (``epoch``) of the views under ``base``.

    A rebuild starts a new epoch: its keys are new, so it never mixes with the generation it replaces,
    which is then deleted whole.
    """

    def __init__(self, base: str, epoch: int) -> None:
        self.base = base
        self.epoch = epoch
        self.root = f"{base}{epoch}:"

    @staticmethod
    def epoch_key(base: str) -> str:
        return f"{base}epoch"

    @staticmethod
    def parts_key(base: str) -> str:
        """Hash ``topic:partition`` → the epoch whose entries that partition's applied offsets belong to."""
        return f"{base}parts"

    def availability(self, tenant: str, store: str) -> str:
        return f"{self.root}{tenant}:avail:{store}"

    def item_stores(self, tenant: str, item: str) -> str:
        return f"{self.root}{tenant}:item-stores:{item}"

    def status(self, tenant: str) -> str:
        return f"{self.root}{tenant}:status"

    def item(self, tenant: str, item: str) -> str:
        return f"{self.root}{tenant}:item:{item}"

    def prices(self, tenant: str, item: str) -> str:
        return f"{self.root}{tenant}:prices:{item}"


#: the last aware datetime ``iso`` formatted, and its text: a feed's events share their times, and formatting costs
#: ~1.2 µs. Only an aware value is kept: another equals it only at the same instant, hence has the same text (a naive
#: one never equals an aware one; naive values, or a tzinfo without an offset, are formatted each time). One pair,
#: replaced whole: a dict memo cost more than it saved when every event has its own time.
_LAST_ISO: tuple[datetime, str] = (datetime(1970, 1, 1, tzinfo=timezone.utc), "1970-01-01T00:00:00Z")


def iso(value: Any) -> str | None:
    global _LAST_ISO
    if value is None:
        return None
    if isinstance(value, datetime):
        last = _LAST_ISO
        if value == last[0]:
            return last[1]
        if value.tzinfo is timezone.utc:  # what the Avro decoder gives: isoformat() ends in "+00:00"
            text = value.isoformat()[:-6] + "Z"
        else:
            aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            text = aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        if value.tzinfo is not None and value.utcoffset() is not None:
            _LAST_ISO = (value, text)
        return text
    return str(value)


def _store(record: dict[str, Any]) -> str:
    return record.get("storeId") or "-"


def _slot(event: Event, keys: Keys) -> Slot:
    r, tenant = event.record, event.record["tenantId"]
    schema = event.schema
    if schema == "StockLevelUpdated":
        return Slot(keys.availability(tenant, _store(r)), _stock_field(r))
    if schema == "PriceUpdated":
        field_ = f"{_store(r)}|{r.get('variantId') or '-'}|{r['priceType']}|{r['currency']}"
        return Slot(keys.prices(tenant, r["itemId"]), field_)
    if schema == "CatalogItemUpserted":
        return Slot(keys.item(tenant, r["itemId"]), "catalog")
    if schema == "StoreStatusUpdated":
        return Slot(keys.status(tenant), r.get("storeId") or r["externalStoreId"])
    if schema == "MenuItemUpserted":
        return Slot(keys.item(tenant, r["itemId"]), f"menu:{_store(r)}:{r.get('menuId') or '-'}")
    if schema == "VariantUpserted":
        return Slot(keys.item(tenant, r["itemId"]), f"variant:{r['variantId']}")
    raise UnsupportedEvent(f"{schema} is not a view event")


def _stock_field(r: dict[str, Any]) -> str:
    return r["itemId"] + (f"/{r['variantId']}" if r.get("variantId") else "")


def _stock_member(r: dict[str, Any], keys: Keys) -> tuple[str, str]:
    """The set member a stock event adds alongside its slot: the item → (store, field) availability index."""
    # the item → (store, field) index makes an item's availability in every store a few HGETs
    return keys.item_stores(r["tenantId"], r["itemId"]), dumps([_store(r), _stock_field(r)])


def already_applied(doc: dict[str, Any] | None, event: Event, position: str | None = None) -> bool:
    """``position``: ``event.position`` when the caller has it already."""
    if doc is None:
        return False
    if doc.get("_o", {}).get(position or event.position, -1) >= event.offset:
        return True
    return event.record["commandId"] in doc.get("_c", ())


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidCommand(f"{what} {text!r} is not a decimal", reason_code="invalid_quantity") from None
    if not value.is_finite():
        raise InvalidCommand(f"{what} {text!r} is not finite", reason_code="invalid_quantity")
    return value


def _stock(doc: dict[str, Any] | None, r: dict[str, Any]) -> dict[str, Any]:
    before = doc.get("quantity") if doc else None
    qty: str | None
    mode = r["mode"]
    if mode == "delta":
        level: Decimal | None
        if r.get("quantity") is None:
            qty = before
            level = None if before is None else Decimal(before)
        elif before is None:
            # a movement with no known level before it: the level stays unknown until an absolute arrives
            qty = level = None
        else:
            level = _decimal(before, "quantity") + _decimal(r["quantity"], "delta")
            qty = quantity(level)  # the same number, its digits normalised: the same sign
        # a delta says how stock moved, not whether the item sells: availability follows the new level
        available = bool(r["available"]) and (level is None or level > 0)
    elif mode == "absolute":
        # an availability-only event (a POS snooze) carries no count: keep the level we know
        qty = quantity(_decimal(r["quantity"], "quantity")) if r.get("quantity") is not None else before
        available = bool(r["available"])
    else:
        raise InvalidCommand(f"unknown stock mode {mode!r}", reason_code="invalid_mode")
    again = r.get("availableAgainAt")
    return {"storeId": r.get("storeId"), "itemId": r["itemId"], "variantId": r.get("variantId"),
            "externalItemId": r["externalItemId"], "quantity": qty,
            "unit": r.get("unit") or (doc.get("unit") if doc else None), "available": available,
            "reason": r["reason"], "availableAgainAt": None if again is None else iso(again), "lastMode": mode}


def _view(schema: str, doc: dict[str, Any] | None, r: dict[str, Any]) -> dict[str, Any]:
    if schema == "StockLevelUpdated":
        return _stock(doc, r)
    if schema == "StoreStatusUpdated":
        return {"storeId": r.get("storeId"), "externalStoreId": r["externalStoreId"], "status": r["status"],
                "busyDelayMinutes": r.get("busyDelayMinutes"), "until": iso(r.get("until"))}
    # the fields as dict displays: a comprehension per event costs twice as much (its own frame)
    g = r.get
    if schema == "CatalogItemUpserted":
        return {"itemId": g("itemId"), "externalItemId": g("externalItemId"), "name": g("name"),
                "description": g("description"), "brand": g("brand"), "category": g("category"), "gtin": g("gtin"),
                "imageUrls": g("imageUrls"), "attributes": g("attributes"), "active": g("active"),
                "merchantId": g("merchantId")}
    if schema == "MenuItemUpserted":
        return {"storeId": g("storeId"), "menuId": g("menuId"), "itemId": g("itemId"),
                "externalItemId": g("externalItemId"), "name": g("name"), "description": g("description"),
                "category": g("category"), "amountMinor": g("amountMinor"), "currency": g("currency"),
                "modifierGroups": g("modifierGroups"), "available": g("available")}
    if schema == "VariantUpserted":
        return {"itemId": g("itemId"), "variantId": g("variantId"), "externalVariantId": g("externalVariantId"),
                "name": g("name"), "attributes": g("attributes"), "gtin": g("gtin")}
    if schema == "PriceUpdated":
        return {"storeId": g("storeId"), "itemId": g("itemId"), "variantId": g("variantId"),
                "priceType": g("priceType"), "currency": g("currency"), "amountMinor": g("amountMinor")}
    raise UnsupportedEvent(f"{schema} is not a view event")


def apply(doc: dict[str, Any] | None, event: Event, *, recent: int = 16,
          position: str | None = None) -> dict[str, Any]:
    """The slot's document after ``event`` (``doc`` is the one before, None when absent). Pure.

    ``position``: ``event.position`` when the caller has it already.
    """
    r = event.record
    out = _view(event.schema, doc, r)
    out["updatedAt"] = iso(r["occurredAt"])
    out["commandId"] = r["commandId"]
    out["_o"] = {**(doc or {}).get("_o", {}), position or event.position: event.offset}
    out["_c"] = ([*(doc or {}).get("_c", ()), r["commandId"]])[-recent:]
    return out


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document without its idempotency markers."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def dumps(doc: Any) -> str:
    """Compact JSON with sorted keys, not ASCII-escaped.

    Byte for byte ``json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)`` for what view
    documents hold (strings, integers, booleans, null, lists, objects with string keys; the event schemas have
    no floats), at orjson's cost; whatever orjson refuses (an integer beyond 64 bits, a lone surrogate, a
    non-string key) goes through the standard library as before.
    """
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dumpb(doc: Any) -> bytes:
    """``dumps(doc)`` as UTF-8 bytes, without the round trip through ``str`` (a script argument: Redis wants bytes)."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return dumps(doc).encode()


def loads(text: str) -> Any:
    """A stored document (orjson; the standard library for anything orjson refuses, e.g. an escaped lone surrogate)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@dataclass
class Plan:
    """A batch as compare-and-set writes: each slot's document before (as stored) and after."""

    writes: dict[Slot, tuple[str | None, str]] = field(default_factory=dict)
    members: set[tuple[str, str]] = field(default_factory=set)
    positions: set[str] = field(default_factory=set)
    applied: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    ignored: int = 0
    rejected: list[tuple[Event, Exception]] = field(default_factory=list)
    #: (provider, outcome) → count: applied, duplicate, ignored, rejected
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


def plan(events: list[Event], current: dict[Slot, str | None], keys: Keys, *, recent: int = 16,
         at: list[Slot | None] | None = None) -> Plan:
    """Fold ``events`` (offset order within each partition) over the ``current`` stored slots. Pure.

    ``current`` must hold every slot the events touch (``slots()`` lists them). Events of other types are
    ignored; an event the views cannot apply (a corrupt quantity) is rejected alone, the rest goes on.
    ``at``: each event's slot (None for an ignored type) when the caller has them already (``event_slots``).
    """
    out = Plan()
    docs: dict[Slot, dict[str, Any] | None] = {}
    written: dict[Slot, None] = {}  # slots with a new document, in the order of their first write
    if at is None:
        at = event_slots(events, keys)
    where: dict[tuple[str, int], str] = {}  # (topic, partition) → its position text, made once per batch
    members, applied, outcomes = out.members, out.applied, out.outcomes
    for ev, slot in zip(events, at):
        position = where.get((ev.topic, ev.partition))
        if position is None:
            position = where[(ev.topic, ev.partition)] = ev.position
        provider = ev.record.get("provider") or "unknown"
        if type(provider) is not str:
            provider = str(provider)
        if slot is None:
            out.ignored += 1
            outcomes[(provider, "ignored")] += 1
            continue
        if slot in docs:
            doc = docs[slot]
        else:
            stored = current[slot]
            doc = docs[slot] = loads(stored) if stored else None
        if already_applied(doc, ev, position):
            out.duplicates += 1
            outcomes[(provider, "duplicate")] += 1
            continue
        try:
            new = apply(doc, ev, recent=recent, position=position)
        except (InvalidCommand, QuantityError) as exc:
            out.rejected.append((ev, exc))
            outcomes[(provider, "failed")] += 1
            continue
        docs[slot] = new
        written[slot] = None
        if ev.schema == "StockLevelUpdated":
            members.add(_stock_member(ev.record, keys))
        applied[ev.topic] += 1
        outcomes[(provider, "applied")] += 1
    out.positions = set(where.values())
    # a slot several events of the batch update is serialised once, after the last of them
    out.writes = {slot: (current[slot], dumps(docs[slot])) for slot in written}
    return out


def event_slots(events: list[Event], keys: Keys) -> list[Slot | None]:
    """Each event's slot, None for an event type the views ignore."""
    return [_slot(ev, keys) if ev.schema in APPLIED_TYPES else None for ev in events]


def slots(events: list[Event], keys: Keys) -> set[Slot]:
    return {_slot(ev, keys) for ev in events if ev.schema in APPLIED_TYPES}
