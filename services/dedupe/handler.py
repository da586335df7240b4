"""Dedupe: the adapter's idempotency key, claimed in PostgreSQL, one query per batch."""
from __future__ import annotations

from typing import Any, Protocol

from ingest import topics
from ingest.avro import codec
from ingest.errors import DuplicateDelivery, IngestError, Retriable, Skippable
from ingest.kafka.results import Input, Output, Result
from ingest.pipeline import BodyLoader, adapter_for, deliveries, forward_headers


class ClaimStore(Protocol):
    async def claim(self, items: list[tuple[str, str, str]]) -> dict[str, tuple[bool, str]]:
        """(key, raw_id, origin) → key: (ours, first raw_id). See ``repositories.claim``."""


def dedupe_key(record: dict[str, Any], adapter_key: str) -> str:
    # each replay request goes through once: it has a key of its own
    replay = record.get("replayId")
    return f"{record['tenantId']}:{adapter_key}" + (f"#replay:{replay}" if replay else "")


def delivery_key(record: dict[str, Any]) -> str:
    """The raw payload itself (per replay): the same rawId published twice is one delivery."""
    replay = record.get("replayId")
    return f"raw:{record['rawId']}" + (f"#replay:{replay}" if replay else "")


def import_key(inp: Input) -> str:
    """A feed upload is a snapshot: the same file sent again still counts (it may restore deactivated items),
    so only an explicit ``Idempotency-Key`` header makes two uploads one."""
    headers = {k.lower(): v for k, v in (inp.record.get("headers") or {}).items()}
    own = headers.get("idempotency-key")
    return f"{inp.provider}:import:" + (f"key:{own}" if own else f"raw:{inp.raw_id}")


async def handle(inputs: list[Input], *, claims: ClaimStore, bodies: BodyLoader) -> list[Result]:
    results: list[Result | None] = [None] * len(inputs)
    # a rawId already claimed from another input offset was republished (the sweeper after a crash, or a
    # broker timeout whose first attempt landed): it is on its way already, drop it silently
    seen = await claims.claim([(delivery_key(i.record), i.raw_id or "", i.origin) for i in inputs])
    fresh, fresh_keys = [], set()
    for n, inp in enumerate(inputs):
        key = delivery_key(inp.record)
        if seen[key][0] and key not in fresh_keys:
            fresh.append(inp)
            fresh_keys.add(key)
        else:
            results[n] = Result(label="redelivered")
    index = {id(inp): n for n, inp in enumerate(inputs)}
    # a bulk import is never loaded here (it may be gigabytes): its key is its own, see import_key
    keyed: list[tuple[int, str]] = [(index[id(i)], dedupe_key(i.record, import_key(i))) for i in fresh
                                    if i.record.get("family") == "import"]
    fresh = [i for i in fresh if i.record.get("family") != "import"]
    pulled: set[int] = set()
    for inp, d in zip(fresh, await deliveries(fresh, bodies)):
        n = index[id(inp)]
        if d.pulled:
            pulled.add(n)
        try:
            adapter = adapter_for(d.provider)
            keyed.append((n, dedupe_key(inputs[n].record, adapter.dedupe_key(adapter.parse(d)))))
        except Retriable:
            raise
        except Skippable as exc:
            results[n] = Result(skipped=exc.reason_code, label="skipped")
        except IngestError as exc:
            results[n] = Result.fail(exc)
    first_in_batch: dict[str, int] = {}
    to_claim = []
    for n, key in keyed:
        if key in first_in_batch:
            continue
        first_in_batch[key] = n
        to_claim.append((key, inputs[n].raw_id or "", inputs[n].origin))
    claimed = await claims.claim(to_claim)
    for n, key in keyed:
        inp = inputs[n]
        ours, first_raw = claimed[key]
        if first_in_batch[key] != n:
            ours, first_raw = False, inputs[first_in_batch[key]].raw_id or ""
        if ours or first_raw == inp.raw_id:
            topic = topics.IMPORTS if inp.record.get("family") == "import" else topics.DEDUPED
            value = codec().splice("Deduped", inp.value, inp.record, tail={"dedupeKey": key})
            results[n] = Result(outputs=[Output(topic, inp.key or "", value,
                                                forward_headers(inp, "Deduped"))])
        elif n in pulled:
            # a poller re-fetching a document that has not changed: nothing new, not a vendor fault
            results[n] = Result(skipped="unchanged_since_last_pull", label="skipped")
        else:
            results[n] = Result.fail(DuplicateDelivery(f"already accepted as raw {first_raw}"),
                                     firstRawId=first_raw, dedupeKey=key)
    return [r for r in results if r is not None]
