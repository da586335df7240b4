"""Lightspeed K-Series adapter: the interface methods, nothing else."""
from __future__ import annotations

import base64
from collections.abc import Mapping
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
from ingest.adapters.lightspeed import payloads as p
from ingest.adapters.lightspeed import translate
from ingest.adapters.signing import verify_basic_auth
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

#: [derived, unconfirmed] the delivery id subscribers dedupe on
IDEMPOTENCY_HEADER = "X-Lightspeed-Idempotency-Key"
#: on a pulled menu, the business location the poller asked for (the document itself does not say)
PULL_LOCATION_HEADER = "X-Business-Location-Id"

_MODELS: dict[str, type[BaseModel]] = {
    "ITEM": p.ItemAvailability,
    "ORDER_API": p.Readiness,
    "ORDER": p.OrderNotification,
    "menu.load": p.MenuLoad,
}


class LightspeedSource(SourceEvent):
    body: Any
    location: str | None = None  # businessLocationId: the store


class LightspeedAdapter(ProviderAdapter[LightspeedSource]):
    provider = "lightspeed"
    kind = "pos"
    # HTTP Basic auth set at webhook registration: no body coverage, no timestamp
    auth = AuthTraits(covers_body=False, timestamped=False)

    def _credentials(self, secret: str) -> str:
        """A source secret is ``user:password``, or the password alone with ``basic_auth_username``."""
        return secret if ":" in secret else f"{self.options.get('basic_auth_username', '')}:{secret}"

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        verify_basic_auth(headers, [self._credentials(s) for s in self.secrets])

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        token = base64.b64encode(self._credentials(secret).encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def parse(self, raw: RawDelivery) -> LightspeedSource:
        data = load_json(raw.body)
        if not isinstance(data, dict):
            raise UnparseablePayload("K-Series notifications are JSON objects")
        pulled = raw.pulled or "menuEntryGroups" in data
        kind = "menu.load" if pulled else str(data.get("type"))
        if kind not in _MODELS:
            # PAYMENT notifications and anything new: acknowledged, not translated
            raise UnsupportedEvent(f"K-Series {kind} notification is not translated")
        try:
            body: Any = _MODELS[kind].model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UnparseablePayload(f"{kind}: {err.get('loc')}: {err.get('msg')}") from exc
        if isinstance(body, p.OrderNotification) and body.status not in translate.ORDER_STATUS:
            raise UnsupportedEvent(f"order status {body.status!r} has no canonical meaning")
        location = raw.headers.get(PULL_LOCATION_HEADER) if pulled else str(body.businessLocationId)
        occurred_at = getattr(body, "countUpdatedAt", None) or getattr(body, "lastUpdatedAt", None)
        event_id = raw.headers.get(IDEMPOTENCY_HEADER) or _identity(body)
        return LightspeedSource(event_type=kind, event_id=event_id, occurred_at=occurred_at, payload=data,
                                delivery=raw, body=body, location=location)

    def mapping_keys(self, source: LightspeedSource) -> frozenset[MappingKey]:
        extra = {MappingKey("store", source.location)} if source.location else set()
        return translate.keys(source.body) | extra

    def to_canonical_commands(self, source: LightspeedSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context,
                              store_id=mapping_context.resolve_optional("store", source.location))
        return translate.TRANSLATORS[source.event_type](source.body, make, mapping_context)


def _identity(body: Any) -> str | None:
    """Fallback dedupe ids where the (unconfirmed) idempotency header is absent."""
    if isinstance(body, p.ItemAvailability):
        return f"item:{body.businessLocationId}:{body.sku}:{body.countUpdatedAt}:{body.status}"
    if isinstance(body, p.OrderNotification):
        return f"order:{body.thirdPartyReference}:{body.status}"
    return None
