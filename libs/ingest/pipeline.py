"""What stages share: rebuilding the delivery from an envelope, adapters by provider, per-input errors."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Protocol

import orjson

from ingest.adapters.base import Headers, ProviderAdapter, RawDelivery
from ingest.adapters.registry import UnknownProvider, adapter_class
from ingest.canonical.mapping import TenantSettings
from ingest.errors import IngestError, Retriable, Skippable, UnparseablePayload
from ingest.kafka.results import Input, Result


class BodyLoader(Protocol):
    async def get_range(self, key: str, offset: int, length: int) -> bytes: ...


def options_json(options: Mapping[str, Any] | None) -> str:
    """A source's options as the canonical JSON the Mapped envelope carries (and adapters are cached by)."""
    return orjson.dumps(options or {}, option=orjson.OPT_SORT_KEYS).decode()


def adapter_for(provider: str, options: Mapping[str, Any] | str | None = None) -> ProviderAdapter:  # type: ignore[type-arg]
    """Stages never verify signatures, so adapters here hold no secrets; ``options`` are the source's
    (currency, facility, timezone, merchant…: they change what a payload means), as a mapping or as
    ``options_json``'s text."""
    return _adapter(provider, options if isinstance(options, str) else options_json(options))


@lru_cache(maxsize=4096)
def _adapter(provider: str, options: str) -> ProviderAdapter:  # type: ignore[type-arg]
    try:
        return adapter_class(provider)(options=orjson.loads(options) if options != "{}" else None)
    except UnknownProvider as exc:
        raise UnparseablePayload(str(exc), reason_code="unknown_provider") from exc


def tenant_from_map(tenant_id: str, values: dict[str, str]) -> TenantSettings:
    return TenantSettings(tenant_id, values.get("autoCreateItems") == "true", values.get("timezone") or "UTC",
                          values.get("defaultCurrency") or None, values.get("defaultCategory") or None)


def tenant_to_map(t: TenantSettings) -> dict[str, str]:
    return {"autoCreateItems": "true" if t.auto_create_items else "false", "timezone": t.timezone,
            "defaultCurrency": t.default_currency or "", "defaultCategory": t.default_category or ""}


async def body_of(record: dict[str, Any], bodies: BodyLoader) -> bytes:
    """Inline when small (stages never touch S3 on the hot path), else the segment range."""
    body = record.get("body")
    if body is not None:
        return bytes(body)
    return await bodies.get_range(record["segmentKey"], record["segmentOffset"], record["segmentLength"])


async def deliveries(inputs: list[Input], bodies: BodyLoader,
                     tenants: dict[str, TenantSettings] | None = None) -> list[RawDelivery]:
    out = []
    large = [i for i in inputs if i.record.get("body") is None]
    fetched = dict(zip((id(i) for i in large), await asyncio.gather(*(body_of(i.record, bodies) for i in large))))
    for inp in inputs:
        r = inp.record
        body = fetched[id(inp)] if id(inp) in fetched else bytes(r["body"])
        tenant = (tenants or {}).get(r["tenantId"]) or (
            tenant_from_map(r["tenantId"], r["tenantSettings"]) if r.get("tenantSettings") else None)
        out.append(RawDelivery(body=body, headers=Headers(r.get("headers") or {}), raw_id=r["rawId"],
                               tenant_id=r["tenantId"], provider=r["provider"], family=r["family"],
                               received_at=r["receivedAt"], route=r.get("route", ""),
                               content_type=r.get("contentType", ""), replay_id=r.get("replayId"), tenant=tenant))
    return out


async def each(items: Iterable[Any], fn: Callable[[Any], Awaitable[Result] | Result]) -> list[Result]:
    """Apply ``fn`` per input; our own classified errors become that input's Result.

    Unexpected exceptions propagate on purpose: ``run_stage`` isolates and classifies them.
    """
    out = []
    for item in items:
        try:
            res = fn(item)
            out.append(await res if asyncio.iscoroutine(res) else res)  # type: ignore[arg-type]
        except Retriable:
            raise
        except Skippable as exc:
            out.append(Result(skipped=exc.reason_code, label="skipped"))
        except IngestError as exc:
            out.append(Result.fail(exc))
    return out


def forward_headers(inp: Input, schema: str) -> dict[str, str]:
    return {"raw-id": inp.raw_id or "", "tenant-id": inp.tenant_id or "", "provider": inp.provider, "type": schema}


def passthrough(record: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {n: record[n] for n in names if n in record}
