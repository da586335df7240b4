"""In-house WMS adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, SourceEvent, load_json
from ingest.adapters.base import first_error
from ingest.adapters.inhouse_wms import payloads, translate
from ingest.adapters.signing import standard_webhooks_sign, verify_standard_webhooks
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent


class InhouseWmsSource(SourceEvent):
    envelope: payloads.Envelope
    data: object


class InhouseWmsAdapter(ProviderAdapter[InhouseWmsSource]):
    provider = "inhouse-wms"
    kind = "erp"
    auth = AuthTraits(covers_body=True, timestamped=True)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        verify_standard_webhooks(headers, raw_body, self.secrets, now=self._now,
                                 tolerance_seconds=int(self.options.get("tolerance_seconds", 300)))

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": standard_webhooks_sign(secret, msg_id, timestamp, body)}

    def parse(self, raw: RawDelivery) -> InhouseWmsSource:
        body = load_json(raw.body)
        try:
            env = payloads.Envelope.model_validate(body)
        except ValidationError as exc:
            raise UnparseablePayload(f"not an in-house WMS envelope: {first_error(exc)}") from exc
        model = payloads.DATA_MODELS.get(env.event_type)
        if model is None:
            raise UnsupportedEvent(f"event type {env.event_type!r} is not handled")
        try:
            data = model.model_validate(env.data)
        except ValidationError as exc:
            raise UnparseablePayload(f"{env.event_type}: {first_error(exc)}") from exc
        return InhouseWmsSource(event_type=env.event_type, event_id=env.event_id, occurred_at=env.occurred_at,
                                payload=body, delivery=raw, envelope=env, data=data)

    def sequence(self, source: InhouseWmsSource) -> tuple[str, int] | None:
        env = source.envelope
        return (f"{env.tenant_id}/{env.facility_id}", env.sequence) if env.sequence is not None else None

    def mapping_keys(self, source: InhouseWmsSource) -> frozenset[MappingKey]:
        return translate.keys(source.envelope, source.data)

    def to_canonical_commands(self, source: InhouseWmsSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        env = source.envelope
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve("merchant", env.tenant_id),
                              store_id=mapping_context.resolve("store", env.facility_id),
                              occurred_at=env.occurred_at)
        return translate.TRANSLATORS[env.event_type](env, source.data, make, mapping_context)

