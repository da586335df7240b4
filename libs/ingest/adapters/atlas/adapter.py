"""Atlas Kitchen adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from ingest.adapters.atlas import payloads as p
from ingest.adapters.atlas import translate
from ingest.adapters.base import (
    AuthTraits,
    CommandFactory,
    ProviderAdapter,
    RawDelivery,
    SourceEvent,
    load_json,
)
from ingest.adapters.signing import verify_static_token
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

_MODELS = {"stock.updated": p.StockUpdated, "menu.updated": p.MenuUpdated}
#: the Admin API header naming the merchant; present on pulled documents when the poller records it
MERCHANT_HEADER = "X-Merchant-Id"


class AtlasSource(SourceEvent):
    body: Any
    #: what the poller should fetch next (``menu.updated`` names only the menu)
    refetch: str | None = None


class AtlasAdapter(ProviderAdapter[AtlasSource]):
    provider = "atlas"
    kind = "pos"
    # a token chosen per webhook (Bearer or a custom header): no body coverage, no timestamp
    auth = AuthTraits(covers_body=False, timestamped=False)

    def _scheme(self) -> tuple[str, str]:
        custom = self.options.get("header_name")
        return (str(custom), "") if custom else ("Authorization", "Bearer ")

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        name, prefix = self._scheme()
        verify_static_token(headers, self.secrets, header_name=name, prefixes=(prefix,) if prefix else ())

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        name, prefix = self._scheme()
        return {name: f"{prefix}{secret}"}

    def parse(self, raw: RawDelivery) -> AtlasSource:
        data = load_json(raw.body)
        try:
            if raw.pulled or (isinstance(data, dict) and "sections" in data):
                menu = p.MenuDetail.model_validate(data)
                stamp = menu.updated_at
                return AtlasSource(event_type="menu.detail", event_id=f"menu:{menu.id}:{stamp}", payload=data,
                                   delivery=raw, body=menu, occurred_at=_when(stamp))
            env = p.Envelope.model_validate(data)
            model = _MODELS.get(env.event_type)
            if model is None:
                raise UnsupportedEvent(f"Atlas event {env.event_type!r} is not translated")
            body: Any = model.model_validate(env.payload)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UnparseablePayload(f"atlas: {err.get('loc')}: {err.get('msg')}") from exc
        # Atlas sends no event id and warns of duplicates: the type, time and key fields identify one
        identity = ":".join(str(v) for v in env.payload.values() if not isinstance(v, (dict, list)))
        return AtlasSource(event_type=env.event_type, event_id=f"{env.event_type}:{env.event_at}:{identity}",
                           occurred_at=_when(env.event_at), payload=data, delivery=raw, body=body,
                           refetch=f"GET /admin/v1/menus/{body.menu_id}" if isinstance(body, p.MenuUpdated)
                           else None)

    def mapping_keys(self, source: AtlasSource) -> frozenset[MappingKey]:
        merchant = source.delivery.headers.get(MERCHANT_HEADER)
        extra = {MappingKey("merchant", merchant)} if merchant else set()
        return translate.keys(source.body) | extra

    def to_canonical_commands(self, source: AtlasSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        body = source.body
        merchant = source.delivery.headers.get(MERCHANT_HEADER)
        store = str(body.outlet_id) if isinstance(body, p.StockUpdated) else None
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", merchant),
                              store_id=mapping_context.resolve_optional("store", store))
        return translate.TRANSLATORS[source.event_type](body, make, mapping_context)


def _when(stamp: int | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(stamp, timezone.utc) if stamp is not None else None
    except (OverflowError, OSError, ValueError) as exc:
        raise UnparseablePayload(f"timestamp out of range: {stamp!r}", reason_code="invalid_timestamp") from exc
