"""Command writer: every command to ``catalog.commands`` and its event to its domain topic, keyed per entity.

A command id already written by another input (a replay of a processed payload) is not written again, so
the public topics never carry one ``commandId`` twice.
"""
from __future__ import annotations

import uuid
from typing import Any, Protocol

from ingest import topics
from ingest.avro import codec
from ingest.canonical.commands import COMMAND_TYPES
from ingest.ids import uuid5_str
from ingest.kafka.results import Input, Output, Result, outcome_record

EVENT_NAMESPACE = uuid.UUID("9d2e6b1c-7f4a-5b3e-8c2d-1a0f9e8d7c6b")


class WrittenCommands(Protocol):
    async def claim(self, items: list[tuple[str, str, str]], *,
                    reclaimed: set[str] | None = None) -> dict[str, tuple[bool, str]]:
        """(command_id, raw_id, origin) → command_id: (ours, first raw_id); ``reclaimed`` gets the ids this same
        input claimed before (a re-run after an aborted or crashed transaction). A command id listed twice is
        answered for its first occurrence."""

    async def published(self, command_ids: list[str]) -> dict[str, set[str]]:
        """Logical topic → those of ``command_ids`` a read_committed reader sees there, once the dead run is decided.

        A re-run's output must be produced again only if the dead run's output is invisible. On a broker that
        exposes aborted transactions (Tansu delivers them to read_committed readers once decided; Jepsen found
        aborted reads in the Kafka protocol itself) it may not be, and producing again would put a commandId twice
        on a public topic. The answer must wait until the dead run is decided: while undecided it is hidden by the
        stable offset and "not there" would be a guess (issue #7). Raises a ``Retriable`` error meanwhile.
        """


_ENTITY_FIELDS = {"UpsertCatalogItem": "itemId", "UpsertMenuItem": "itemId", "UpsertVariant": "itemId",
                  "UpdateStockLevel": "itemId", "UpdatePrice": "itemId", "UpdateOrderStatus": "orderId"}
#: command type → the field naming its entity in the Kafka key (None: the store)
_ENTITY = {name: _ENTITY_FIELDS.get(name) for name in COMMAND_TYPES}
#: command type → (event topic, event type)
_EVENT = {name: (cls.event_topic, cls.event_type) for name, cls in COMMAND_TYPES.items()}


def kafka_key(record: dict[str, Any]) -> str:
    entity = _ENTITY[record["commandType"]]
    entity_id = record[entity] if entity else (record.get("storeId") or record.get("externalStoreId"))
    return f"{record['tenantId']}:{record.get('storeId') or '-'}:{entity_id}"


def event_of(name: str, record: dict[str, Any], raw: bytes = b"") -> tuple[str, str, bytes]:
    """The event: ``eventId`` and ``eventType`` written in front of the command's own encoded fields."""
    topic, event_type = _EVENT[name]
    head = {"eventId": uuid5_str(EVENT_NAMESPACE, record["commandId"]), "eventType": event_type}
    return topic, event_type, codec().splice(event_type, raw, record, head=head)


async def handle(inputs: list[Input], *, written: WrittenCommands) -> list[Result]:
    decode = codec().decode
    decoded = [[(raw, *decode(raw)) for raw in inp.record["commands"]] for inp in inputs]
    raw_ids = [inp.raw_id or "" for inp in inputs]
    rerun: set[str] = set()
    claims = await written.claim([(rec["commandId"], raw_id, inp.origin)
                                  for inp, raw_id, cmds in zip(inputs, raw_ids, decoded) for _, _, rec in cmds],
                                 reclaimed=rerun)
    # only on the rare re-run path: read back what the dead run left on the public topics
    public = await written.published(sorted(rerun)) if rerun else {}
    seen_commands, seen_events = public.get(topics.COMMANDS, ()), {t: public.get(t, ()) for t, _ in _EVENT.values()}
    # one batch may carry an input twice (an upstream stage's fenced run, visible on Tansu, and its re-run): the
    # claims answer per command id, so a command goes out for its first input in the batch only (issue #7)
    first_input: dict[str, int] = {}
    for n, cmds in enumerate(decoded):
        for _, _, rec in cmds:
            first_input.setdefault(rec["commandId"], n)
    results = []
    for n, (inp, raw_id, cmds) in enumerate(zip(inputs, raw_ids, decoded)):
        outputs: list[Output] = []
        ids, types, dupes, used_topics = [], [], [], set()
        for raw, name, record in cmds:
            command_id = record["commandId"]
            if not claims[command_id][0] or first_input[command_id] != n:
                dupes.append(command_id)
                continue
            key = kafka_key(record)
            headers = {"raw-id": raw_id, "tenant-id": record["tenantId"], "provider": record["provider"],
                       "type": name, "command-id": command_id}
            if command_id not in seen_commands:
                outputs.append(Output(topics.COMMANDS, key, raw, headers))
            topic, event_type, value = event_of(name, record, raw)
            if command_id not in seen_events[topic]:
                outputs.append(Output(topic, key, value, {**headers, "type": event_type}))
            ids.append(command_id)
            types.append(name)
            used_topics.add(topic)
        if ids:
            used_topics.add(topics.COMMANDS)
        outcome = outcome_record(inp, stage="command-writer", outcome="processed",
                                 event_type=inp.record.get("eventType", ""), command_ids=ids, command_types=types,
                                 topics=sorted(used_topics), duplicate_command_ids=dupes)
        results.append(Result(outputs=outputs, outcome=outcome, label="processed"))
    return results
