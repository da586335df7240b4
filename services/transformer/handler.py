"""Transformer: ``adapter.to_canonical_commands`` with the mapping context the resolver loaded."""
from __future__ import annotations

from ingest import topics
from ingest.adapters.base import RawDelivery
from ingest.avro import codec
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.kafka.results import Input, Output, Result
from ingest.pipeline import BodyLoader, adapter_for, deliveries, each, forward_headers

PASSED_ON = ("rawId", "tenantId", "provider", "family", "receivedAt", "replayId", "dedupeKey", "tenantSettings")


def context_of(inp: Input, delivery: RawDelivery) -> MappingContext:
    ids = {MappingKey(m["entity"], m["externalId"]): m["canonicalId"] for m in inp.record.get("mappings", [])}
    return MappingContext(delivery.tenant_id, delivery.provider, ids, delivery.tenant)


def transform(inp: Input, delivery: RawDelivery) -> Result:
    adapter = adapter_for(delivery.provider, inp.record.get("sourceOptions") or "{}")
    source = adapter.parse(delivery)
    ctx = context_of(inp, delivery)
    commands = adapter.to_canonical_commands(source, ctx)
    if inp.record.get("zeroItems"):  # the mapper's verdict on the full snapshot this payload completed
        commands += adapter.zeroing_commands(source, ctx, inp.record["zeroItems"], start=len(commands))
    record = {k: inp.record.get(k) for k in PASSED_ON}
    record["eventType"] = source.event_type
    record["commands"] = [codec().encode(c.command_type, c.to_record()) for c in commands]
    return Result(outputs=[Output(topics.TRANSFORMED, inp.key or "", codec().encode("Transformed", record),
                                  forward_headers(inp, "Transformed"))])


async def handle(inputs: list[Input], *, bodies: BodyLoader) -> list[Result]:
    return await each(zip(inputs, await deliveries(inputs, bodies)), lambda pair: transform(*pair))
