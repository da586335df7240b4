"""Shopify adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from pydantic import ValidationError

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, SourceEvent, load_json
from ingest.adapters.base import first_error
from ingest.adapters.shopify import payloads, translate
from ingest.adapters.signing import optional_header, sign_body, verify_body_hmac
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
# Shopify "Events" deliveries send the same headers without the X- prefix
EVENTS_HMAC_HEADER = "shopify-hmac-sha256"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``X-Shopify-<name>`` or its Events spelling ``shopify-<name>``."""
    return optional_header(headers, f"X-Shopify-{name}") or optional_header(headers, f"shopify-{name}")


class ShopifySource(SourceEvent):
    shop: str | None = None
    body: object


class ShopifyAdapter(ProviderAdapter[ShopifySource]):
    provider = "shopify"
    kind = "seller"
    # no timestamp is signed: replay protection is the Event-Id dedupe
    auth = AuthTraits(covers_body=True)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        name = EVENTS_HMAC_HEADER if optional_header(headers, HMAC_HEADER) is None and \
            optional_header(headers, EVENTS_HMAC_HEADER) is not None else HMAC_HEADER
        verify_body_hmac(headers, raw_body, self.secrets, header_name=name, encoding="base64")

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {HMAC_HEADER: sign_body(secret, body, encoding="base64")}

    def parse(self, raw: RawDelivery) -> ShopifySource:
        topic = _header(raw.headers, "Topic")
        if not topic:
            raise UnparseablePayload("missing X-Shopify-Topic header", reason_code="missing_topic")
        model = payloads.TOPIC_MODELS.get(topic)
        if model is None:
            raise UnsupportedEvent(f"topic {topic!r} is not handled")
        data = load_json(raw.body)
        try:
            body = model.model_validate(data)
        except ValidationError as exc:
            raise UnparseablePayload(f"{topic}: {first_error(exc)}") from exc
        shop = _header(raw.headers, "Shop-Domain")
        return ShopifySource(event_type=topic, event_id=_header(raw.headers, "Event-Id"),
                             occurred_at=_occurred_at(body, raw), payload=data, delivery=raw,
                             shop=shop.lower() if shop else None, body=body)

    def dedupe_key(self, source: ShopifySource) -> str:
        # one Event-Id fans out to every subscription of the shop: the shop scopes it
        if source.event_id:
            return f"shopify:{source.shop or '-'}:{source.event_id}"
        return super().dedupe_key(source)

    def mapping_keys(self, source: ShopifySource) -> frozenset[MappingKey]:
        return translate.keys(source.event_type, source.body, source.shop)

    def to_canonical_commands(self, source: ShopifySource, mapping_context: MappingContext) -> list[CommandBase]:
        body = source.body
        store = mapping_context.resolve("store", body.location_id) \
            if isinstance(body, payloads.InventoryLevel) else None
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", source.shop),
                              store_id=store)
        currency = self.options.get("currency") or mapping_context.tenant.default_currency
        return translate.TRANSLATORS[source.event_type](body, make, mapping_context, currency)


def _occurred_at(body: object, raw: RawDelivery) -> datetime | None:
    updated = getattr(body, "updated_at", None)
    if isinstance(updated, datetime):
        return updated.astimezone(timezone.utc)
    triggered = _header(raw.headers, "Triggered-At")
    try:
        return datetime.fromisoformat(triggered).astimezone(timezone.utc) if triggered else None
    except ValueError:
        return None

