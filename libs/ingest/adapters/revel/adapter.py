"""Revel adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ingest.adapters.base import (
    AuthTraits,
    CommandFactory,
    ProviderAdapter,
    RawDelivery,
    SourceEvent,
    load_json,
)
from ingest.adapters.revel import payloads as p
from ingest.adapters.revel import translate
from ingest.adapters.signing import sign_body, verify_body_hmac
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

SIGNATURE_HEADER = "X-Revel-Signature"
_MODELS = {"inout.stock": p.InOutStock, "menu.updated": p.MenuUpdated}


class RevelSource(SourceEvent):
    body: Any
    instance: str | None = None  # X-Revel-Instance: the customer's Revel (our merchant)
    establishment: str | None = None  # X-Revel-Establishment-Id: the store
    refetch: str | None = None


class RevelAdapter(ProviderAdapter[RevelSource]):
    provider = "revel"
    kind = "pos"
    auth = AuthTraits(covers_body=True, timestamped=False)

    @property
    def _algorithm(self) -> Any:
        # SHA-1 per the docs' 40-hex ping example; integrators disagree, so a source may say sha256
        return self.options.get("algorithm", "sha1")

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        verify_body_hmac(headers, raw_body, self.secrets, header_name=SIGNATURE_HEADER, encoding="hex",
                         algorithm=self._algorithm)

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {SIGNATURE_HEADER: sign_body(secret, body, encoding="hex", algorithm=self._algorithm)}

    def parse(self, raw: RawDelivery) -> RevelSource:
        data = load_json(raw.body)
        headers = raw.headers
        event_type = "product.list" if raw.pulled or (isinstance(data, dict) and "objects" in data) \
            else headers.get("X-Revel-Event-Type")
        if event_type != "product.list" and event_type not in _MODELS:
            raise UnsupportedEvent(f"Revel event {event_type!r} is not translated")
        try:
            model = p.ProductList if event_type == "product.list" else _MODELS[event_type]
            body: Any = model.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UnparseablePayload(f"{event_type}: {err.get('loc')}: {err.get('msg')}") from exc
        establishment = headers.get("X-Revel-Establishment-Id")
        return RevelSource(event_type=event_type, payload=data, delivery=raw, body=body,
                           event_id=headers.get("X-Revel-Event-Id") or headers.get("X-Revel-Message-Id"),
                           instance=headers.get("X-Revel-Instance"), establishment=establishment,
                           refetch=f"GET /resources/Product/?establishment={establishment}"
                           if event_type == "menu.updated" else None)

    def mapping_keys(self, source: RevelSource) -> frozenset[MappingKey]:
        extra = {MappingKey(e, v) for e, v in (("merchant", source.instance), ("store", source.establishment))
                 if v}
        return translate.keys(source.body) | extra  # type: ignore[arg-type]

    def to_canonical_commands(self, source: RevelSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", source.instance),
                              store_id=mapping_context.resolve_optional("store", source.establishment))
        return translate.TRANSLATORS[source.event_type](source.body, make, mapping_context)
