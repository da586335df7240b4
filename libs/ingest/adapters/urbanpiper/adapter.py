"""UrbanPiper adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from ingest.adapters.base import (
    AuthTraits,
    CommandFactory,
    ProviderAdapter,
    RawDelivery,
    SourceEvent,
    load_json,
)
from ingest.adapters.signing import verify_static_token
from ingest.adapters.urbanpiper import payloads as p
from ingest.adapters.urbanpiper import translate
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

#: the header we register with each webhook (``headers`` map of POST /external/api/v1/webhooks/)
DEFAULT_HEADER = "X-Webhook-Token"

#: UrbanPiper's unix times come in seconds (10 digits) and, from some senders, in milliseconds (13 digits).
#: Decided by magnitude: at or above 10**11 is milliseconds. 10**11 seconds is the year 5138 and 10**11
#: milliseconds is 1973-03-03, so no plausible time of either unit lands on the wrong side.
MILLIS_FROM = 10**11

_MODELS: dict[str, type[BaseModel]] = {
    "item_state_toggle": p.ItemStateToggle,
    "option_state_toggle": p.OptionStateToggle,
    "store_action": p.StoreAction,
    "inventory_update": p.InventoryUpdate,
    "order_status_update": p.OrderStatusUpdate,
}


class UrbanPiperSource(SourceEvent):
    body: Any


class UrbanPiperAdapter(ProviderAdapter[UrbanPiperSource]):
    provider = "urbanpiper"
    kind = "pos"
    # a static registered header: nothing covers the body, nothing is timestamped
    auth = AuthTraits(covers_body=False, timestamped=False)

    @property
    def _header(self) -> str:
        return str(self.options.get("header_name", DEFAULT_HEADER))

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        verify_static_token(headers, self.secrets, header_name=self._header)

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {self._header: secret}

    def parse(self, raw: RawDelivery) -> UrbanPiperSource:
        data = load_json(raw.body)
        kind = _classify(data)
        if kind not in _MODELS:
            raise UnsupportedEvent(f"UrbanPiper {kind or 'unknown'} callback is not translated")
        try:
            body: Any = _MODELS[kind].model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UnparseablePayload(f"{kind}: {err.get('loc')}: {err.get('msg')}") from exc
        event_id, stamp = _identity(kind, body)
        try:
            occurred_at = _when(stamp) if stamp else None
        except (OverflowError, OSError, ValueError) as exc:
            raise UnparseablePayload(f"{kind}: timestamp out of range: {stamp!r}",
                                     reason_code="invalid_timestamp") from exc
        return UrbanPiperSource(event_type=kind, event_id=event_id, payload=data, delivery=raw, body=body,
                                occurred_at=occurred_at)

    def mapping_keys(self, source: UrbanPiperSource) -> frozenset[MappingKey]:
        return translate.keys(source.body)

    def to_canonical_commands(self, source: UrbanPiperSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context)
        return translate.TRANSLATORS[source.event_type](source.body, make, mapping_context)


def _classify(data: Any) -> str | None:
    """UrbanPiper names no event type in the body: each callback has a distinct shape."""
    if not isinstance(data, dict):
        return None
    if "new_state" in data:
        return "order_status_update"
    if "order" in data:
        return "order_placed"
    if "delivery_info" in data:
        return "rider_status_update"
    if "reference" in data and "stats" in data:
        return "store_creation" if "stores" in data else "inventory_update"
    if "location_ref_id" in data:
        return "store_action"
    if "options" in data and "action" in data:
        return "option_state_toggle"
    if isinstance(data.get("status"), list) and "action" in data:
        return "item_state_toggle"
    return None


def _when(stamp: int) -> datetime:
    """A unix time in seconds or milliseconds (see ``MILLIS_FROM``), exactly: no float division."""
    if abs(stamp) >= MILLIS_FROM:
        seconds, millis = divmod(stamp, 1000)
        return datetime.fromtimestamp(seconds, timezone.utc) + timedelta(milliseconds=millis)
    return datetime.fromtimestamp(stamp, timezone.utc)


def _identity(kind: str, body: Any) -> tuple[str | None, int | None]:
    """The dedupe id and the unix time of a callback."""
    if isinstance(body, p.OrderStatusUpdate):
        if body.new_state.lower() not in translate.ORDER_STATES:
            raise UnsupportedEvent(f"order state {body.new_state!r} has no canonical meaning")
        return f"order:{body.order_id}:{body.new_state}", body.timestamp_unix
    if isinstance(body, p.InventoryUpdate):
        return f"inventory:{body.reference}", None
    # one callback per platform with the same reference_id
    ref = body.reference_id
    return (f"{kind}:{ref}:{body.platform or '-'}" if ref else None), body.ts_utc
