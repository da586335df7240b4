"""WooCommerce adapter: the interface methods, nothing else."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone

from pydantic import ValidationError

from ingest.adapters.base import (
    AuthTraits,
    CommandFactory,
    ProviderAdapter,
    RawDelivery,
    Reply,
    SourceEvent,
    load_json,
)
from ingest.adapters.base import first_error
from ingest.adapters.signing import optional_header, sign_body, verify_body_hmac
from ingest.adapters.woocommerce import payloads, translate
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
_PING = re.compile(rb"\s*webhook_id=\d+\s*")


def normalize_source(url: str) -> str:
    """The merchant key: ``X-WC-Webhook-Source`` lower-cased without the trailing slash."""
    return url.strip().rstrip("/").lower()


class WooCommerceSource(SourceEvent):
    source: str
    body: object


class WooCommerceAdapter(ProviderAdapter[WooCommerceSource]):
    provider = "woocommerce"
    kind = "seller"
    # no timestamp is signed, so no replay window: dedupe on (source, resource, id, date_modified_gmt)
    auth = AuthTraits(covers_body=True)

    def preflight(self, family: str, headers: Mapping[str, str], raw_body: bytes) -> Reply | None:
        # the creation ping is unsigned, carries no X-WC headers and must get a 200 to activate the webhook
        if optional_header(headers, SIGNATURE_HEADER) is None and _PING.fullmatch(raw_body):
            return Reply(200, {"status": "ok"}, enter_pipeline=False)
        return None

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        # raw bytes as delivered: the body has escaped slashes, so re-serializing would break the HMAC
        verify_body_hmac(headers, raw_body, self.secrets, header_name=SIGNATURE_HEADER, encoding="base64")

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {SIGNATURE_HEADER: sign_body(secret, body, encoding="base64")}

    def parse(self, raw: RawDelivery) -> WooCommerceSource:
        if _PING.fullmatch(raw.body):
            raise UnsupportedEvent("creation ping: answered by preflight, nothing to store")
        topic = optional_header(raw.headers, "X-WC-Webhook-Topic")
        if not topic:
            raise UnparseablePayload("missing X-WC-Webhook-Topic header", reason_code="missing_topic")
        model = payloads.TOPIC_MODELS.get(topic)
        if model is None:
            raise UnsupportedEvent(f"topic {topic!r} is not handled")
        source = normalize_source(optional_header(raw.headers, "X-WC-Webhook-Source") or "")
        if not source:
            raise UnparseablePayload("missing X-WC-Webhook-Source header", reason_code="missing_source")
        data = load_json(raw.body)
        try:
            body = model.model_validate(data)
        except ValidationError as exc:
            raise UnparseablePayload(f"{topic}: {first_error(exc)}") from exc
        return WooCommerceSource(event_type=topic, event_id=_event_id(source, body, raw),
                                 occurred_at=_occurred_at(body), payload=data, delivery=raw, source=source,
                                 body=body)

    def mapping_keys(self, source: WooCommerceSource) -> frozenset[MappingKey]:
        return translate.keys(source.body, source.source)

    def to_canonical_commands(self, source: WooCommerceSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve("merchant", source.source))
        currency = self.options.get("currency") or mapping_context.tenant.default_currency
        return translate.TRANSLATORS[source.event_type](source.body, make, mapping_context, source.source, currency)


def _event_id(source: str, body: object, raw: RawDelivery) -> str:
    resource = optional_header(raw.headers, "X-WC-Webhook-Resource") or "product"
    if isinstance(body, payloads.Product):
        return f"{source}|{resource}|{body.id}|{body.date_modified_gmt or '-'}"
    # a delete has no modification date; the delivery id is unique per webhook and second, enough to tell
    # a delete after a restore from the first delete
    delivery = optional_header(raw.headers, "X-WC-Webhook-Delivery-ID") or raw.sha256
    return f"{source}|{resource}|{getattr(body, 'id', '-')}|deleted|{delivery}"


def _occurred_at(body: object) -> datetime | None:
    # *_gmt values are UTC without a zone designator
    text = getattr(body, "date_modified_gmt", None)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None
    except ValueError:
        return None

