"""The declarative adapter: one class driven by a ``MappingSpec``; a provider is a spec plus a subclass."""
from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar

import yaml
from pydantic import ValidationError

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, load_json
from ingest.adapters.declarative import translate
from ingest.adapters.declarative.payloads import DeclarativeSource, MappingSpec
from ingest.adapters.signing import sign_body, verify_body_hmac, verify_static_token
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnsupportedEvent


class SpecError(ValueError):
    """A mapping spec that does not validate: a deployment error, raised at import, never per payload."""


def load_spec(text: str) -> MappingSpec:
    """A YAML (or JSON, a subset) spec, validated."""
    try:
        return MappingSpec.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise SpecError(f"invalid mapping spec: {exc}") from exc


def packaged_spec(name: str) -> MappingSpec:
    """A spec shipped in ``specs/`` (package data, read once at import like code)."""
    return load_spec(resources.files(__package__).joinpath("specs", name).read_text(encoding="utf-8"))


class DeclarativeAdapter(ProviderAdapter[DeclarativeSource]):
    """Subclasses set ``spec`` (and ``provider`` = ``spec.provider``)."""

    kind = "pos"
    spec: ClassVar[MappingSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "spec"):
            cls.provider = cls.spec.provider
            # a static token covers no body bytes; none of the spec schemes is timestamped
            cls.auth = AuthTraits(covers_body=cls.spec.auth.scheme.startswith("hmac"), timestamped=False)

    def _prefix(self) -> str:
        return "Bearer " if self.spec.auth.scheme == "bearer" else ""

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        auth = self.spec.auth
        if auth.scheme.startswith("hmac"):
            verify_body_hmac(headers, raw_body, self.secrets, header_name=auth.header,
                             encoding="hex" if auth.scheme.endswith("hex") else "base64")
        else:
            prefix = self._prefix()
            verify_static_token(headers, self.secrets, header_name=auth.header,
                                prefixes=(prefix,) if prefix else ())

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        auth = self.spec.auth
        if auth.scheme.startswith("hmac"):
            return {auth.header: sign_body(secret, body, encoding="hex" if auth.scheme.endswith("hex")
                                           else "base64")}
        return {auth.header: f"{self._prefix()}{secret}"}

    def parse(self, raw: RawDelivery) -> DeclarativeSource:
        body = load_json(raw.body)
        event_type = translate.evaluate(self.spec.event_type, body, raw.headers, None)
        if event_type in self.spec.unsupported:
            raise UnsupportedEvent(f"{self.provider} event {event_type!r} is not translated")
        event = self.spec.events.get(str(event_type))
        if event is None:
            raise UnsupportedEvent(f"{self.provider} event {event_type!r} is not in spec")
        parts = [translate.evaluate(v, body, raw.headers, None) for v in event.event_id]
        occurred = translate.evaluate(event.occurred_at, body, raw.headers, None) \
            if event.occurred_at else None
        # evaluates every value once: a malformed body is UnparseablePayload at parse time
        translate.keys(event, body, raw.headers)
        return DeclarativeSource(event_type=str(event_type), payload=body, delivery=raw, body=body,
                                 event_id=":".join(str(x) for x in parts) if parts else None,
                                 occurred_at=occurred)

    def mapping_keys(self, source: DeclarativeSource) -> frozenset[MappingKey]:
        return translate.keys(self.spec.events[source.event_type], source.body, source.delivery.headers)

    def to_canonical_commands(self, source: DeclarativeSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        event = self.spec.events[source.event_type]
        headers = source.delivery.headers
        scope = {name: translate.evaluate(spec, source.body, headers, None) if spec else None
                 for name, spec in (("merchant", event.merchant), ("store", event.store))}
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", scope["merchant"]),
                              store_id=mapping_context.resolve_optional("store", scope["store"]))
        return translate.commands(event, source.body, headers, make, mapping_context)


def spec_adapter(spec: MappingSpec, name: str | None = None) -> type[DeclarativeAdapter]:
    """An adapter class for a spec (tests, and specs that are not packaged providers)."""
    return type(name or f"{spec.provider.title()}SpecAdapter", (DeclarativeAdapter,), {"spec": spec})


class PosistAdapter(DeclarativeAdapter):
    """Posist / Restroworks: an UNVERIFIED draft (no public docs); see specs/posist.v1.yaml."""

    spec = packaged_spec("posist.v1.yaml")


class DotPeAdapter(DeclarativeAdapter):
    """DotPe: an UNVERIFIED draft (no public docs); see specs/dotpe.v1.yaml."""

    spec = packaged_spec("dotpe.v1.yaml")


