"""Unicommerce adapter: the interface methods, the synchronous replies Uniware expects, and date parsing."""
from __future__ import annotations

import hashlib
import hmac

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, Reply, SourceEvent
from ingest.adapters.base import first_error
from ingest.adapters.signing import optional_header, verify_static_token
from ingest.adapters.unicommerce import payloads, translate
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import InvalidSignature, UnparseablePayload, UnsupportedEvent

_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
# Java's medium format, no zone: "Jul 9, 2024 3:34:35 PM"
_MEDIUM = re.compile(r"^\s*([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),\s*(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})\s*([AaPp][Mm])\s*$")


def parse_uniware_time(text: str | None, tz: str) -> datetime | None:
    """A Uniware date as UTC: the zone-less medium format read in ``tz``, or epoch milliseconds."""
    if not text:
        return None
    if text.strip().isdigit():
        try:
            return datetime.fromtimestamp(int(text.strip()) / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise UnparseablePayload(f"Uniware time out of range: {text[:40]!r}",
                                     reason_code="invalid_timestamp") from exc
    m = _MEDIUM.match(text)
    if m is None or m.group(1).lower() not in _MONTHS:
        return None
    hour = int(m.group(4)) % 12 + (12 if m.group(7).lower() == "pm" else 0)
    local = datetime(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)), hour, int(m.group(5)),
                     int(m.group(6)), tzinfo=ZoneInfo(tz))
    return local.astimezone(timezone.utc)


def access_token(secret: str) -> str:
    """The token we hand Uniware for a channel password: derived, so nothing new has to be stored."""
    return "uc_" + hmac.new(secret.encode(), b"unicommerce-access-token", hashlib.sha256).hexdigest()


def auth_token_reply(access_token: str | None) -> Reply:
    """The answer to Uniware's ``GET /authToken``: the receiver checks the credentials, issues the token
    (stored hashed as this source's secret) and answers with this; ``None`` means refused."""
    if access_token is None:
        return Reply(200, {"status": "FAILED", "accessToken": None})
    return Reply(200, {"status": "SUCCESS", "accessToken": access_token})


class UnicommerceSource(SourceEvent):
    route: str
    facility: str | None = None
    body: object


class UnicommerceAdapter(ProviderAdapter[UnicommerceSource]):
    """Options: ``facility`` (store code when a payload names none), ``timezone`` (of zone-less dates)."""

    provider = "unicommerce"
    kind = "erp"
    # a bearer-style token we issued; nothing covers the body and nothing is timestamped
    auth = AuthTraits(covers_body=False)
    #: the paths Uniware calls on us (channel API and partner notifications): route tail → family
    extra_routes = {route: route for route in ("updateInventory", "orders/cancel", "products",
                                               *payloads.NOTIFICATION_ROUTES)}

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        # the channel API sends ``apiKey``; partner notifications send ``Authorization`` (bare or Bearer);
        # either carries the source secret itself or the token /authToken derived from it
        accepted = self.secrets + [access_token(s) for s in self.secrets]
        if optional_header(headers, "apiKey") is not None:
            verify_static_token(headers, accepted, header_name="apiKey")
        elif optional_header(headers, "Authorization") is not None:
            verify_static_token(headers, accepted, header_name="Authorization", prefixes=("Bearer ",))
        else:
            raise InvalidSignature("missing apiKey or Authorization header", reason_code="missing_signature")

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {"apiKey": secret}

    def query_reply(self, route: str, query: Mapping[str, str]) -> Reply | None:
        """``GET /authToken?username=…&password=…``: the password is the source secret (constant-time check
        against every active one); the answer is the derived access token Uniware then sends as ``apiKey``."""
        if route != "authToken":
            return None
        presented = (query.get("password") or "").encode()
        token = None
        for secret in self.secrets:
            if hmac.compare_digest(presented, secret.encode()) and token is None:
                token = access_token(secret)
        return auth_token_reply(token)

    def accepted_reply(self, family: str, raw_body: bytes, *, raw_id: str, base_url: str) -> Reply | None:
        # Uniware reads a status out of the answer, not the HTTP code; line failures surface later as failures
        route = payloads.route_for(family)
        if route == "updateInventory":
            return Reply(200, {"status": "SUCCESS", "failedProductList": []})
        if route == "orders/cancel":
            return Reply(200, {"status": "SUCCESS", "orderItems": []})
        if route in payloads.NOTIFICATION_ROUTES:
            return Reply(200, {"status": "Success", "message": f"accepted {raw_id}"})
        return None

    def parse(self, raw: RawDelivery) -> UnicommerceSource:
        try:
            data = payloads.lower_keys(_load(raw.body))
        except RecursionError as exc:  # nesting deeper than any Uniware document
            raise UnparseablePayload("JSON nested too deeply", reason_code="too_deep") from exc
        if not isinstance(data, dict):
            raise UnparseablePayload("expected a JSON object", reason_code="invalid_shape")
        route = payloads.route_for(raw.family) or payloads.classify(data)
        if route is None:
            raise UnsupportedEvent(f"unrecognised Unicommerce payload on {raw.family!r}")
        model = payloads.ROUTE_MODELS.get(route)
        if model is None or route == "orders/cancel":
            # order-line cancellations and shipments are OMS signals, not catalog commands
            raise UnsupportedEvent(f"Unicommerce {route} is not translated")
        try:
            body = model.model_validate(data)
        except ValidationError as exc:
            raise UnparseablePayload(f"{route}: {first_error(exc)}") from exc
        tz = self._timezone(raw)
        return UnicommerceSource(event_type=route, event_id=_event_id(route, body, raw),
                                 occurred_at=_occurred_at(body, tz), payload=data, delivery=raw, route=route,
                                 facility=optional_header(raw.headers, "Facility") or self.options.get("facility"),
                                 body=body)

    def mapping_keys(self, source: UnicommerceSource) -> frozenset[MappingKey]:
        return translate.keys(source.route, source.body, source.facility)

    def to_canonical_commands(self, source: UnicommerceSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        # the tenant is the Uniware subdomain, bound through the token: no merchant id in any payload
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", self.options.get("merchant")))
        return translate.TRANSLATORS[source.route](source.body, make, mapping_context, source.facility)

    def _timezone(self, raw: RawDelivery) -> str:
        tz = str(self.options.get("timezone") or getattr(raw.tenant, "timezone", None) or "Asia/Kolkata")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise UnparseablePayload(f"unknown time zone {tz!r}", reason_code="invalid_timezone") from exc
        return tz


def _load(raw: bytes) -> Any:
    # not load_json: Uniware's own samples repeat a key (unitPrice) in one object; the last value wins
    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw.decode("utf-8-sig"), parse_constant=_no_constants)
    except RecursionError as exc:
        raise UnparseablePayload("JSON nested too deeply", reason_code="too_deep") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnparseablePayload(f"not valid JSON: {str(exc)[:200]}", reason_code="invalid_json") from exc


def _event_id(route: str, body: object, raw: RawDelivery) -> str | None:
    """Uniware has no event ids: the reference's keys per document, see docs/connectors-erp.md."""
    if isinstance(body, payloads.InflowReceipt):
        return f"grn:{body.grnnumber}"
    if isinstance(body, payloads.Gatepass):
        return f"gatepass:{body.code}:{body.statuscode}"
    if isinstance(body, payloads.Return):
        return f"return:{body.key}:{body.status}"
    if isinstance(body, payloads.UpdateInventory):
        # absolutes are idempotent, and the same body can legitimately recur (42 → 41 → 42): only a repeat
        # within the same minute is a duplicate delivery
        minute = raw.received_at.astimezone(timezone.utc).replace(second=0, microsecond=0)
        return f"updateInventory:{raw.sha256}:{minute:%Y%m%dT%H%M}"
    return None


def _occurred_at(body: object, tz: str) -> datetime | None:
    for name in ("completedat", "updated", "createdon", "grncreateddatetime", "created"):
        value = parse_uniware_time(getattr(body, name, None), tz)
        if value is not None:
            return value
    return None
