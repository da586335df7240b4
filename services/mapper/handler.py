"""Mapping resolver: every vendor id a batch names, resolved in one query (plus one per auto-creation)."""
from __future__ import annotations

from typing import Protocol

from ingest import topics
from ingest.adapters.base import RawDelivery, SourceEvent
from ingest.avro import codec
from ingest.canonical.mapping import MappingKey, TenantSettings, auto_canonical_id
from ingest.errors import IngestError, Retriable, Skippable, UnmappedReference
from ingest.kafka.results import Input, Output, Result
from ingest.pipeline import BodyLoader, adapter_for, deliveries, forward_headers, tenant_to_map

Wanted = tuple[str, str, str, str]  # tenant, provider, entity, external id


class MappingRepository(Protocol):
    async def tenants(self, tenant_ids: set[str]) -> dict[str, TenantSettings]: ...

    async def load(self, wanted: list[Wanted]) -> dict[Wanted, str]: ...

    async def create(self, rows: list[tuple[str, str, str, str, str]], *, auto_created: bool) -> None:
        """Insert mappings that do not exist yet (never overwrite one a person made)."""


async def handle(inputs: list[Input], *, repo: MappingRepository, bodies: BodyLoader) -> list[Result]:
    tenants = await repo.tenants({i.tenant_id or "" for i in inputs})
    parsed: dict[int, tuple[RawDelivery, SourceEvent, frozenset[MappingKey]]] = {}
    results: dict[int, Result] = {}
    declared: list[tuple[str, str, str, str, str]] = []
    for n, d in enumerate(await deliveries(inputs, bodies, tenants)):
        try:
            adapter = adapter_for(d.provider)
            source = adapter.parse(d)
            parsed[n] = (d, source, adapter.mapping_keys(source))
            for key, canonical in adapter.declared_mappings(source):
                declared.append((d.tenant_id, d.provider, key.entity, key.external_id,
                                 canonical or auto_canonical_id(d.tenant_id, d.provider, key)))
        except Retriable:
            raise
        except Skippable as exc:
            results[n] = Result(skipped=exc.reason_code, label="skipped")
        except IngestError as exc:
            results[n] = Result.fail(exc)
    if declared:
        await repo.create(declared, auto_created=False)
    wanted = sorted({(d.tenant_id, d.provider, k.entity, k.external_id) for d, _, keys in parsed.values()
                     for k in keys})
    found = await repo.load(wanted)
    auto: list[tuple[str, str, str, str, str]] = []
    for d, _, keys in parsed.values():
        tenant = tenants.get(d.tenant_id)
        if tenant and tenant.auto_create_items:
            for k in keys:
                if (d.tenant_id, d.provider, k.entity, k.external_id) not in found:
                    auto.append((d.tenant_id, d.provider, k.entity, k.external_id,
                                 auto_canonical_id(d.tenant_id, d.provider, k)))
    if auto:
        await repo.create(auto, auto_created=True)
        found.update(await repo.load([row[:4] for row in auto]))
    for n, (d, source, keys) in parsed.items():
        inp = inputs[n]
        missing = sorted(k for k in keys if (d.tenant_id, d.provider, k.entity, k.external_id) not in found)
        if missing:
            names = ", ".join(str(k) for k in missing)
            results[n] = Result.fail(UnmappedReference(f"no mapping for {names}",
                                                       missing=[(k.entity, k.external_id) for k in missing]),
                                     eventType=source.event_type)
            continue
        auto_keys = {row[:4] for row in auto}
        mappings = [{"entity": k.entity, "externalId": k.external_id,
                     "canonicalId": found[(d.tenant_id, d.provider, k.entity, k.external_id)],
                     "autoCreated": (d.tenant_id, d.provider, k.entity, k.external_id) in auto_keys}
                    for k in sorted(keys)]
        tenant = tenants.get(d.tenant_id) or TenantSettings(d.tenant_id)
        record = {**inp.record, "mappings": mappings, "tenantSettings": tenant_to_map(tenant)}
        results[n] = Result(outputs=[Output(topics.MAPPED, inp.key or "", codec().encode("Mapped", record),
                                            forward_headers(inp, "Mapped"))])
    return [results[n] for n in range(len(inputs))]
