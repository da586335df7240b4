"""In-house WMS adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from ingest.adapters.base import (AuthTraits, CommandFactory, FacilityStock, ProviderAdapter, RawDelivery, SnapshotPage,
                                 SourceEvent, load_json)
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
        return (_facility(env), env.sequence) if env.sequence is not None else None

    def facility_stock(self, source: InhouseWmsSource) -> FacilityStock | None:
        env, data = source.envelope, source.data
        if env.event_type not in translate.STOCK_EVENTS:
            return None
        page = None
        if isinstance(data, payloads.StockSnapshot):
            page = SnapshotPage(data.snapshot_id, data.as_of or env.occurred_at, data.mode == "full", data.page,
                                data.page_count)
        return FacilityStock(_facility(env), tuple(translate.skus(env.event_type, data)), page)

    def zeroing_commands(self, source: InhouseWmsSource, mapping_context: MappingContext, skus: Sequence[str], *,
                         start: int) -> list[CommandBase]:
        return translate.zeroed(self._factory(source, mapping_context, start), mapping_context, skus)

    def mapping_keys(self, source: InhouseWmsSource) -> frozenset[MappingKey]:
        return translate.keys(source.envelope, source.data)

    def to_canonical_commands(self, source: InhouseWmsSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        env = source.envelope
        return translate.TRANSLATORS[env.event_type](env, source.data, self._factory(source, mapping_context),
                                                     mapping_context)

    @staticmethod
    def _factory(source: InhouseWmsSource, ctx: MappingContext, start: int = 0) -> CommandFactory:
        env = source.envelope
        return CommandFactory(source, ctx, merchant_id=ctx.resolve("merchant", env.tenant_id),
                              store_id=ctx.resolve("store", env.facility_id), occurred_at=env.occurred_at,
                              start=start)


def _facility(env: payloads.Envelope) -> str:
    return f"{env.tenant_id}/{env.facility_id}"

