"""Vinculum adapter: stored pull responses in, commands out; plus the pure request builders the poller uses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, SourceEvent, load_json
from ingest.adapters.base import first_error
from ingest.adapters.signing import optional_header
from ingest.adapters.vinculum import payloads, translate
from ingest.adapters.vinculum.payloads import parse_vinculum_time
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

#: the header the poller stores with each document pulled for one ``locCode`` (option ``locations``)
LOCATION_HEADER = "X-Vinculum-Location"


def form_request(api_owner: str, api_key: str, request_body: Mapping[str, Any]) -> bytes:
    """The ``application/x-www-form-urlencoded`` body of a v1–v3 call: ``ApiOwner``, ``ApiKey`` and
    ``RequestBody=<compact JSON>``."""
    payload = json.dumps(request_body, separators=(",", ":"), ensure_ascii=False)
    return urlencode({"ApiOwner": api_owner, "ApiKey": api_key, "RequestBody": payload}).encode()


def header_request(api_owner: str, api_key: str, request_body: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and JSON body of a v4 call (credentials travel as headers)."""
    return ({"Content-Type": "application/json", "ApiOwner": api_owner, "ApiKey": api_key},
            json.dumps(request_body, separators=(",", ":")).encode())


def request_window(start: datetime, end: datetime, tz: str) -> dict[str, str]:
    """``fromDate``/``toDate`` in the organisation's zone, ``DD/MM/YYYY HH:mm:ss`` (overlap windows upstream)."""
    zone = ZoneInfo(tz)
    return {"fromDate": start.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S"),
            "toDate": end.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S")}


class VinculumSource(SourceEvent):
    body: object
    location: str | None = None  # the polled locCode, for snapshot rows that name none


class VinculumAdapter(ProviderAdapter[VinculumSource]):
    """Options: ``currency``, ``timezone`` (default Asia/Kolkata), ``subtract_committed`` (default true),
    ``apply_adjustments`` (default true: set false when snapshots are polled too), ``location`` (the polled
    ``locCode``, for snapshot rows that name none, when the document does not carry it: the poller stores
    ``X-Vinculum-Location`` with each document of a multi-location poll, and that header wins)."""

    provider = "vinculum"
    kind = "erp"
    # pull only: the poller authenticates to Vinculum; a stored response carries no credential of its own
    auth = AuthTraits(covers_body=False, unsigned=True)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        return None

    def parse(self, raw: RawDelivery) -> VinculumSource:
        data = load_json(raw.body)
        if not isinstance(data, dict):
            raise UnparseablePayload("expected a JSON object", reason_code="invalid_shape")
        if str(data.get("responseCode", "0")) not in ("0", "200"):
            raise UnparseablePayload(f"Vinculum error response {data.get('responseCode')}: "
                                     f"{str(data.get('responseMessage'))[:200]}", reason_code="error_response")
        document = raw.family if raw.family in payloads.DOCUMENT_MODELS else payloads.classify(data)
        if document is None:
            raise UnsupportedEvent(f"unrecognised Vinculum document on {raw.family!r}")
        try:
            body = payloads.DOCUMENT_MODELS[document].model_validate(data)
        except ValidationError as exc:
            raise UnparseablePayload(f"{document}: {first_error(exc)}") from exc
        # snapshot rows are (location, sku, bucket) absolutes as of the poll: the body hash is the identity
        location = optional_header(raw.headers, LOCATION_HEADER) or self.options.get("location")
        return VinculumSource(event_type=document, payload=data, delivery=raw, body=body,
                              location=str(location) if location else None)

    def mapping_keys(self, source: VinculumSource) -> frozenset[MappingKey]:
        return translate.keys(source.event_type, source.body, self._options(None, source))

    def to_canonical_commands(self, source: VinculumSource, mapping_context: MappingContext) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", self.options.get("merchant")))
        return translate.TRANSLATORS[source.event_type](source.body, make, mapping_context,
                                                        self._options(mapping_context, source))

    def _options(self, ctx: MappingContext | None, source: VinculumSource) -> dict[str, Any]:
        tenant = ctx.tenant if ctx is not None else None
        # Vinculum dates are the organisation's local time: IST unless the source or the tenant says otherwise
        tz = self.options.get("timezone") or (tenant.timezone if tenant and tenant.timezone != "UTC"
                                              else "Asia/Kolkata")
        currency = self.options.get("currency") or (tenant.default_currency if tenant else None)
        return {**self.options, "timezone": tz, "currency": currency, "location": source.location}

__all__ = ["VinculumAdapter", "form_request", "header_request", "parse_vinculum_time", "request_window"]
