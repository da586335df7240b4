"""The declarative mapping spec (version 1), validated by pydantic, and the source it parses into.

A spec names the auth scheme, where the event type is, and per event type how to compute the event id,
time, merchant, store and a list of canonical commands from the body. Values are small expressions:
``path`` (dotted, ``@.`` = the current ``each`` element), ``header``, ``const``; then ``map`` (lookup by
the value as a string), ``as`` (a conversion) and ``resolve`` (a mapping entity → canonical id).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingest.adapters.base import SourceEvent
from ingest.canonical.commands import COMMAND_TYPES

Conversion = Literal["str", "int", "bool", "not", "unix", "iso", "money_major", "money_minor", "quantity"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Value(_Spec):
    path: str | None = None
    header: str | None = None
    const: Any = None
    map: dict[str, Any] | None = None
    as_: Conversion | None = Field(None, alias="as")
    currency: Value | None = None  # with money_major / money_minor
    resolve: Literal["merchant", "store", "item", "variant"] | None = None
    default: Any = None

    @model_validator(mode="after")
    def _one_source(self) -> Value:
        sources = [k for k in ("path", "header", "const") if k in self.model_fields_set]
        if len(sources) != 1:
            raise ValueError(f"a value needs exactly one of path, header, const (got {sources or 'none'})")
        if self.as_ in ("money_major", "money_minor") and self.currency is None:
            raise ValueError("money conversions need a currency value")
        return self


class CommandSpec(_Spec):
    type: str
    each: str | None = None  # a path to a list: one command per element
    fields: dict[str, Value]

    @model_validator(mode="after")
    def _known_type(self) -> CommandSpec:
        model = COMMAND_TYPES.get(self.type)
        if model is None:
            raise ValueError(f"unknown command type {self.type!r}")
        unknown = set(self.fields) - set(model.model_fields)
        if unknown:
            raise ValueError(f"{self.type} has no fields {sorted(unknown)}")
        return self


class EventSpec(_Spec):
    event_id: list[Value] = Field(default_factory=list)  # joined with ":"
    occurred_at: Value | None = None
    merchant: Value | None = None  # the external merchant id
    store: Value | None = None  # the external store id
    commands: list[CommandSpec]


class AuthSpec(_Spec):
    scheme: Literal["bearer", "header", "hmac-sha256-hex", "hmac-sha256-base64"]
    header: str = "Authorization"


class MappingSpec(_Spec):
    spec_version: Literal[1]
    provider: str
    verified: bool = False  # False: a draft nobody has checked against the vendor
    notes: str = ""
    auth: AuthSpec
    event_type: Value
    events: dict[str, EventSpec]
    unsupported: list[str] = Field(default_factory=list)  # acknowledged, counted, not translated


class DeclarativeSource(SourceEvent):
    body: Any
