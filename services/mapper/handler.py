"""Mapping resolver: every vendor id a batch names, resolved in one query (plus one per auto-creation)."""
from __future__ import annotations

from typing import Any, Protocol

from ingest import topics
from ingest.adapters.base import RawDelivery, SourceEvent
from ingest.avro import codec
from ingest.canonical.mapping import MappingKey, TenantSettings, auto_canonical_id
from ingest.errors import IngestError, OutOfSequence, Retriable, Skippable, UnmappedReference
from ingest.kafka.results import Failure, Input, Output, Result
from ingest.pipeline import BodyLoader, adapter_for, deliveries, forward_headers, tenant_to_map
from ingest.rawsearch import search_row
from services.mapper.snapshots import StockRepository, snapshot_verdicts

Wanted = tuple[str, str, str, str]  # tenant, provider, entity, external id


class SearchIndex(Protocol):
    async def __call__(self, rows: list[dict[str, Any]]) -> None: ...


Sequence = tuple[int, str]  # last applied number, origin of the input that applied it


class MappingRepository(Protocol):
    async def tenants(self, tenant_ids: set[str]) -> dict[str, TenantSettings]: ...

    async def source_options(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(tenant, provider) → the source's options as ``options_json`` text; absent without a source."""

    async def load(self, wanted: list[Wanted]) -> dict[Wanted, str]: ...

    async def create(self, rows: list[tuple[str, str, str, str, str]], *, auto_created: bool) -> None:
        """Insert mappings that do not exist yet (never overwrite one a person made)."""

    async def sequences(self, scopes: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Sequence]: ...

    async def save_sequences(self, rows: dict[tuple[str, str, str], Sequence]) -> None: ...


def check_sequence(number: int, origin: str, last: Sequence | None) -> str | None:
    """None when in order; else ``sequence_gap`` or ``out_of_sequence``. Either way the event is applied and the
    anomaly reported as a failure record next to its commands: detected and visible, never silent."""
    if last is None or number == last[0] + 1 or (number == last[0] and origin == last[1]):
        return None
    return "out_of_sequence" if number <= last[0] else "sequence_gap"


async def sequence_verdicts(inputs: list[Input], parsed: dict[int, tuple[RawDelivery, SourceEvent, frozenset[MappingKey]]],
                            repo: MappingRepository) -> dict[int, Failure]:
    """Per-scope sequence numbers checked in input order; one read and one write per batch."""
    numbered = {}
    for n, (d, source, _) in parsed.items():
        seq = adapter_for(d.provider).sequence(source)
        if seq is not None and not d.replay_id:  # a replay is a deliberate re-run, not a late event
            numbered[n] = ((d.tenant_id, d.provider, seq[0]), seq[1])
    if not numbered:
        return {}
    last = await repo.sequences(sorted({scope for scope, _ in numbered.values()}))
    changed: dict[tuple[str, str, str], Sequence] = {}
    out: dict[int, Failure] = {}
    for n, (scope, number) in sorted(numbered.items()):
        previous = last.get(scope)
        verdict = check_sequence(number, inputs[n].origin, previous)
        if verdict is not None and previous is not None:
            what = (f"{number - previous[0] - 1} event(s) missing before it" if verdict == "sequence_gap"
                    else f"it is not after {previous[0]} (late or reordered)")
            out[n] = Failure(OutOfSequence(f"{scope[2]}: sequence {number} follows {previous[0]}: {what}",
                                           reason_code=verdict),
                             details={"scope": scope[2], "sequence": str(number), "last": str(previous[0])})
        if previous is None or number > previous[0] or verdict is None:
            last[scope] = changed[scope] = (number, inputs[n].origin)
    if changed:
        await repo.save_sequences(changed)
    return out


async def handle(inputs: list[Input], *, repo: MappingRepository, bodies: BodyLoader,
                 index: SearchIndex | None = None, stock: StockRepository | None = None) -> list[Result]:
    tenants = await repo.tenants({i.tenant_id or "" for i in inputs})
    parsed: dict[int, tuple[RawDelivery, SourceEvent, frozenset[MappingKey]]] = {}
    results: dict[int, Result] = {}
    declared: list[tuple[str, str, str, str, str]] = []
    delivered = await deliveries(inputs, bodies, tenants)
    options = await repo.source_options({(d.tenant_id, d.provider) for d in delivered})
    for n, d in enumerate(delivered):
        try:
            adapter = adapter_for(d.provider, options.get((d.tenant_id, d.provider), "{}"))
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
    if index is not None:  # the support console's search projection, one INSERT per batch
        await index([search_row(d, parsed[n][2] if n in parsed else ()) for n, d in enumerate(delivered)])
    sequence_failures = await sequence_verdicts(inputs, parsed, repo)
    zeroings = await snapshot_verdicts({n: p[:2] for n, p in parsed.items()}, stock) if stock is not None else {}
    for n, z in zeroings.items():  # the SKUs a completed full snapshot sets to 0 are resolved with its own
        d, source, keys = parsed[n]
        parsed[n] = (d, source, keys | {MappingKey("item", sku) for sku in z.skus})
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
    auto_keys = {row[:4] for row in auto}
    for n, (d, source, keys) in parsed.items():
        inp = inputs[n]
        missing = sorted(k for k in keys if (d.tenant_id, d.provider, k.entity, k.external_id) not in found)
        if missing:
            names = ", ".join(str(k) for k in missing)
            results[n] = Result.fail(UnmappedReference(f"no mapping for {names}",
                                                       missing=[(k.entity, k.external_id) for k in missing]),
                                     eventType=source.event_type)
            continue
        mappings = [{"entity": k.entity, "externalId": k.external_id,
                     "canonicalId": found[(d.tenant_id, d.provider, k.entity, k.external_id)],
                     "autoCreated": (d.tenant_id, d.provider, k.entity, k.external_id) in auto_keys}
                    for k in sorted(keys)]
        tenant = tenants.get(d.tenant_id) or TenantSettings(d.tenant_id)
        zeroing = zeroings.get(n)
        value = codec().splice("Mapped", inp.value, inp.record,
                               tail={"mappings": mappings, "tenantSettings": tenant_to_map(tenant),
                                     "zeroItems": list(zeroing.skus) if zeroing else [],
                                     "sourceOptions": options.get((d.tenant_id, d.provider), "{}")})
        anomalies = [f for f in (sequence_failures.get(n), zeroing and zeroing.failure) if f]
        results[n] = Result(outputs=[Output(topics.MAPPED, inp.key or "", value,
                                            forward_headers(inp, "Mapped"))], failures=anomalies)
    return [results[n] for n in range(len(inputs))]
