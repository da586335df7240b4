"""The partner Standard API format (contract §4): request and response models, and 400 error texts."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from ingest.adapters.base import load_json
from ingest.canonical.money import CURRENCIES
from ingest.canonical.units import UNITS, normalize_unit
from ingest.errors import UnparseablePayload

# --- field types ------------------------------------------------------------------------------
# RFC 3339 §5.6 date-time; an offset is mandatory because a naive time is ambiguous across outlets.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?$")


def _parse_rfc3339(value: object) -> datetime:
    if not isinstance(value, str):
        # pydantic would otherwise take 1700000000 as a Unix time: one spelling only
        raise PydanticCustomError("rfc3339",
                                  "must be an RFC 3339 date-time string, e.g. 2026-01-14T10:15:00Z")
    if _NAIVE.match(value):
        raise PydanticCustomError(
            "rfc3339_naive",
            "date-time has no UTC offset: add Z or ±HH:MM (e.g. 2026-01-14T10:15:00Z or "
            "2026-01-14T15:45:00+05:30)")
    if not _RFC3339.match(value):
        raise PydanticCustomError("rfc3339", "must be an RFC 3339 date-time, e.g. 2026-01-14T10:15:00Z")
    text = value.upper().replace(" ", "T")
    # Python 3.11 takes at most 6 fractional digits; RFC 3339 allows more, so truncate (sub-µs is noise)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError("rfc3339", "not a valid calendar date-time") from None


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


#: an instant; any offset in, UTC out (canonical commands are UTC)
DateTime = Annotated[datetime, BeforeValidator(_parse_rfc3339), AfterValidator(_utc),
                     WithJsonSchema({"type": "string", "format": "date-time",
                                     "description": "RFC 3339 with Z or ±HH:MM; normalised to UTC",
                                     "examples": ["2026-01-14T10:15:00Z", "2026-01-14T15:45:00+05:30"]})]

#: ids that appear in URL paths (outlets, orders): RFC 3986 unreserved characters plus ':' and '@'
PathId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._~:@-]+$")]
#: ids that appear only in bodies (products, variants, modifier groups, options)
Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Name = Annotated[str, Field(min_length=1, max_length=300)]
RefCode = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
                               description="Your own reference for this request (printable ASCII, no "
                                           "spaces). Requests with the same refCode on the same path are "
                                           "processed once.")]


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise PydanticCustomError("currency", "not an ISO 4217 currency code: '{value}'", {"value": value})
    return value


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["INR", "USD", "JPY", "KWD"]),
                     AfterValidator(_currency)]


def _quantity_text(value: object) -> object:
    # integers are exact; floats are not (0.1 + 0.2), so they are refused rather than rounded
    if isinstance(value, bool) or isinstance(value, float):
        raise PydanticCustomError("quantity", "must be a decimal string like \"12.5\" or an integer")
    if isinstance(value, int):
        return str(value)
    return value


Quantity = Annotated[str, BeforeValidator(_quantity_text),
                     Field(pattern=r"^\d{1,12}(\.\d{1,6})?$", examples=["12", "2.5"]),
                     WithJsonSchema({"oneOf": [{"type": "string", "pattern": r"^\d{1,12}(\.\d{1,6})?$"},
                                               {"type": "integer", "minimum": 0}],
                                     "description": "non-negative decimal string (up to 6 decimals) or "
                                                    "integer; never a JSON float",
                                     "examples": ["12", "2.5"]})]


def _unit(value: str) -> str:
    unit = normalize_unit(value)
    if unit not in UNITS:
        raise PydanticCustomError("unit", "unknown unit '{value}'; use one of {known}",
                                  {"value": value, "known": ", ".join(UNITS)})
    return unit


Unit = Annotated[str, AfterValidator(_unit), Field(examples=sorted(UNITS))]


class _Model(BaseModel):
    """camelCase only on the wire (one spelling); unknown fields refused (a typo must not drop data)."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="forbid")


# --- shared pieces ----------------------------------------------------------------------------
class Money(_Model):
    """An amount in the currency's minor unit (ISO 4217 exponent): 1299 INR = ₹12.99, 1299 JPY = ¥1299."""

    amount_minor: int = Field(ge=0, strict=True, description="integer minor units, e.g. paise or cents")
    currency: Currency


class Stock(_Model):
    """An absolute stock count at the outlet (never a delta: a full sync states the level)."""

    quantity: Quantity
    unit: Unit = "each"


class Menu(_Model):
    """Present for restaurant menus: every product is then also a menu item of this menu at each outlet."""

    id: Id
    name: Name | None = None


class ModifierOption(_Model):
    id: Id
    name: Name
    price: Money | None = Field(None, description="extra charge; absent = free")
    available: bool = Field(True, description="false = hidden from the group until the next sync")


class ModifierGroup(_Model):
    """A choice offered with products (toppings, sizes…), defined once and referenced by id."""

    id: Id
    name: Name
    min: int = Field(0, ge=0, le=100, description="options the customer must choose at least")
    max: int = Field(1, ge=1, le=100, description="options the customer may choose at most")
    options: list[ModifierOption] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _bounds(self) -> ModifierGroup:
        if self.max < self.min:
            raise PydanticCustomError("bounds", "max ({max}) must be at least min ({min})",
                                      {"max": self.max, "min": self.min})
        return self


class Variant(_Model):
    """A sellable variation of a product (size, colour, pack); stock and price may differ per variant."""

    id: Id
    name: Name | None = None
    attributes: dict[str, str] = Field(default_factory=dict, examples=[{"size": "500 g"}])
    gtin: str | None = Field(None, pattern=r"^\d{8}$|^\d{12,14}$", description="EAN/UPC/GTIN barcode")
    price: Money | None = None
    sale_price: Money | None = None
    available: bool = True
    stock: Stock | None = None


class Product(_Model):
    id: Id = Field(description="your product id (SKU/PLU); stable across syncs")
    name: Name
    description: str | None = Field(None, max_length=5000)
    brand: str | None = Field(None, max_length=300)
    category: str | None = Field(None, max_length=300, description="category name, e.g. 'Pizzas'")
    gtin: str | None = Field(None, pattern=r"^\d{8}$|^\d{12,14}$")
    image_urls: list[Annotated[str, Field(pattern=r"^https://\S+$", max_length=2000)]] = Field(
        default_factory=list, max_length=20)
    attributes: dict[str, str] = Field(default_factory=dict, examples=[{"veg": "true", "spiceLevel": "2"}])
    active: bool = Field(True, description="false = delisted from the catalogue")
    price: Money | None = Field(None, description="the price at the listed outlets")
    sale_price: Money | None = Field(None, description="a discounted price, when one applies")
    available: bool = Field(True, description="false = out of stock / snoozed at the listed outlets")
    available_again_at: DateTime | None = Field(None, description="when an unavailable product returns")
    stock: Stock | None = None
    modifier_group_ids: list[Id] = Field(default_factory=list, max_length=50)
    variants: list[Variant] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _again(self) -> Product:
        if self.available and self.available_again_at is not None:
            raise PydanticCustomError("again", "availableAgainAt: only when available is false")
        return self


class RequestBase(_Model):
    """Fields every request body may carry."""

    ref_code: RefCode | None = None
    occurred_at: DateTime | None = Field(None, description="when this happened on your side; default: "
                                                            "when we received it")
    merchant_id: Id | None = Field(None, description="your brand/merchant id when one API key serves "
                                                     "several; default: the tenant")


# --- the five operations ----------------------------------------------------------------------
class Outlet(_Model):
    id: PathId = Field(description="your outlet id; used in /api/v1/outlets/{id}/… afterwards")
    name: Name
    status: Literal["OPEN", "CLOSED"] = Field(description="the outlet's state now")
    timezone: str | None = Field(None, max_length=64, examples=["Asia/Kolkata"])
    address: str | None = Field(None, max_length=1000)
    phone: str | None = Field(None, max_length=40)


class OutletsSyncRequest(RequestBase):
    """POST /api/v1/outlets/sync: register or update outlets (each becomes a store of the tenant)."""

    outlets: list[Outlet] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> OutletsSyncRequest:
        _no_repeats("outlets", [o.id for o in self.outlets])
        return self


#: outlets × (products + variants) in one products sync: bounds the commands one request turns into
MAX_OUTLET_LINES = 50_000


class ProductsSyncRequest(RequestBase):
    """POST /api/v1/products/sync: the full catalogue of the listed outlets."""

    outlet_ids: list[PathId] = Field(min_length=1, max_length=500,
                                     description="the outlets this catalogue, its prices and its "
                                                 "availability apply to")
    menu: Menu | None = None
    modifier_groups: list[ModifierGroup] = Field(default_factory=list, max_length=500)
    products: list[Product] = Field(min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _references(self) -> ProductsSyncRequest:
        pairs = len(self.outlet_ids) * sum(1 + len(product.variants) for product in self.products)
        if pairs > MAX_OUTLET_LINES:
            # every (outlet, product or variant) pair becomes price and stock commands of one delivery
            raise PydanticCustomError(
                "too_many", "outletIds × products: {pairs} outlet lines, at most {limit} per request; split "
                "the outlets over several requests", {"pairs": pairs, "limit": MAX_OUTLET_LINES})
        _no_repeats("outletIds", list(self.outlet_ids))
        _no_repeats("modifierGroups", [g.id for g in self.modifier_groups], suffix=".id")
        _no_repeats("products", [p.id for p in self.products], suffix=".id")
        seen_variants: dict[str, str] = {}
        groups = {g.id for g in self.modifier_groups}
        for i, product in enumerate(self.products):
            for j, group_id in enumerate(product.modifier_group_ids):
                if group_id not in groups:
                    raise PydanticCustomError(
                        "reference", "products[{i}].modifierGroupIds[{j}]: no modifier group '{id}' in "
                        "modifierGroups", {"i": i, "j": j, "id": group_id})
            for j, variant in enumerate(product.variants):
                where = f"products[{i}].variants[{j}].id"
                if variant.id in seen_variants:
                    raise PydanticCustomError("duplicate", "{where}: '{id}' repeats {first}",
                                              {"where": where, "id": variant.id,
                                               "first": seen_variants[variant.id]})
                seen_variants[variant.id] = where
        # one currency per request: a menu item and its options carry a single currency downstream
        first: str | None = None
        for where, money in self._prices():
            if first is None:
                first = money.currency
            elif money.currency != first:
                raise PydanticCustomError(
                    "currency_mix", "{where}.currency: every price in one request must use the same "
                    "currency (the first was {first})", {"where": where, "first": first})
        return self

    def _prices(self) -> list[tuple[str, Money]]:
        out: list[tuple[str, Money]] = []
        for g, group in enumerate(self.modifier_groups):
            out += [(f"modifierGroups[{g}].options[{o}].price", opt.price)
                    for o, opt in enumerate(group.options) if opt.price]
        for i, p in enumerate(self.products):
            out += [(f"products[{i}].{name}", m)
                    for name, m in (("price", p.price), ("salePrice", p.sale_price)) if m]
            for j, v in enumerate(p.variants):
                out += [(f"products[{i}].variants[{j}].{name}", m)
                        for name, m in (("price", v.price), ("salePrice", v.sale_price)) if m]
        return out

    def currency(self) -> str | None:
        prices = self._prices()
        return prices[0][1].currency if prices else None


class OutletStatusRequest(RequestBase):
    """PATCH /api/v1/outlets/{id}/status: open, close or pause an outlet."""

    status: Literal["OPEN", "CLOSED", "PAUSED"] = Field(
        description="PAUSED = open but not taking orders for now")
    until: DateTime | None = Field(None, description="CLOSED/PAUSED only: when it is expected to reopen")
    reason: str | None = Field(None, max_length=300)

    @model_validator(mode="after")
    def _until(self) -> OutletStatusRequest:
        if self.status == "OPEN" and self.until is not None:
            raise PydanticCustomError("until", "until: only with status CLOSED or PAUSED")
        return self


class OutletBusyRequest(RequestBase):
    """PATCH /api/v1/outlets/{id}/busy: slow down (busy, with extra preparation time) or back to normal."""

    busy: bool = Field(description="true = BUSY; false = back to OPEN")
    delay_minutes: int | None = Field(None, ge=1, le=240, strict=True,
                                      description="extra preparation minutes; required when busy")
    until: DateTime | None = Field(None, description="busy only: when busy mode ends by itself")

    @model_validator(mode="after")
    def _delay(self) -> OutletBusyRequest:
        if self.busy and self.delay_minutes is None:
            raise PydanticCustomError("delay", "delayMinutes: required when busy is true")
        if not self.busy and (self.delay_minutes is not None or self.until is not None):
            raise PydanticCustomError("delay", "delayMinutes/until: only when busy is true")
        return self


OrderStatus = Literal["ACCEPTED", "PREPARING", "READY", "PICKED_UP", "COMPLETED", "REJECTED", "CANCELLED",
                      "FAILED"]


class OrderStatusRequest(RequestBase):
    """PATCH /api/v1/orders/{id}/status: the order (id as we sent it to you) moved on."""

    outlet_id: PathId = Field(description="the outlet preparing the order")
    status: OrderStatus
    partner_order_ref: Id | None = Field(None, description="your own id for this order, if different")
    reason: str | None = Field(None, max_length=300, description="why, for REJECTED/CANCELLED/FAILED")


#: route family (what the receiver stores) → the request model of that operation
REQUEST_MODELS: dict[str, type[RequestBase]] = {
    "outlets.sync": OutletsSyncRequest,
    "products.sync": ProductsSyncRequest,
    "outlets.status": OutletStatusRequest,
    "outlets.busy": OutletBusyRequest,
    "orders.status": OrderStatusRequest,
}


# --- responses (the receiver builds them; modelled here so the OpenAPI document is exact) -------
class Accepted(_Model):
    raw_id: str = Field(description="the submission's id; poll GET /api/v1/operations/{rawId}",
                        examples=["0f4b7f58-1c2e-4c55-9a43-7e0d3cbb2a10"])
    status: Literal["accepted"]


class WhoAmI(_Model):
    authenticated: Literal[True]
    tenant_id: str = Field(examples=["acme"])
    api_key_id: int = Field(examples=[7])
    expires_at: DateTime | None = Field(description="null = never expires")


class OperationFailure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    class_: Literal["auth", "mapping", "validation", "processing", "duplicate"] = Field(alias="class")
    reason_code: str = Field(alias="reasonCode", examples=["unmapped_reference"])
    message: str


class Operation(_Model):
    """What became of one submission."""

    raw_id: str
    status: Literal["accepted", "processing", "processed", "failed"] = Field(
        description="accepted: stored, not yet picked up; processing: in the pipeline; processed: "
                    "commands written; failed: see failure")
    provider: str = Field(examples=["standard"])
    family: str = Field(examples=list(REQUEST_MODELS))
    received_at: DateTime
    commands: dict[str, int] = Field(default_factory=dict, description="commands written, by type",
                                     examples=[{"UpsertCatalogItem": 3, "UpdatePrice": 6}])
    failure: OperationFailure | None = None


class ErrorBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: int = Field(description="the HTTP status", examples=[400])
    message: str = Field(examples=["invalid request body"])
    details: str = Field(examples=["products[3].price.amountMinor: Input should be greater than or equal "
                                   "to 0"])


class ErrorEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    error: ErrorBody


# --- 400 texts --------------------------------------------------------------------------------
def _no_repeats(field: str, ids: list[str], *, suffix: str = "") -> None:
    first: dict[str, int] = {}
    for i, value in enumerate(ids):
        if value in first:
            raise PydanticCustomError("duplicate", "{field}[{i}]{suffix}: '{id}' repeats {field}[{j}]",
                                      {"field": field, "i": i, "j": first[value], "id": value,
                                       "suffix": suffix})
        first[value] = i


def error_path(loc: tuple[int | str, ...]) -> str:
    """``("products", 3, "price", "amountMinor")`` → ``products[3].price.amountMinor``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _error_text(err: Any) -> str:
    # strip pydantic's "Value error, " prefix; our own messages already say what is wrong
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    path = error_path(tuple(err.get("loc", ())))
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (check the spelling; field names are camelCase)"
    elif err.get("type") == "missing":
        msg = "required field is missing"
    return f"{path}: {msg}" if path else msg


def first_error(exc: ValidationError) -> str:
    """The first offending field and why, as a partner reads it in the 400's ``details``."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return _error_text(errors[0]) if errors else "invalid request body"


#: a 400 names at most this many offending fields (then how many more), so one bad batch does not echo a
#: thousand lines back
MAX_NAMED_ERRORS = 10


def all_errors(exc: ValidationError) -> str:
    """Every offending field and why, in document order, ``; ``-separated: a partner fixes a request in one
    round trip instead of one field per attempt."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if not errors:
        return "invalid request body"
    named = "; ".join(_error_text(e) for e in errors[:MAX_NAMED_ERRORS])
    more = len(errors) - MAX_NAMED_ERRORS
    return f"{named}; and {more} more" if more > 0 else named


def error_envelope(code: int, message: str, details: str) -> dict[str, Any]:
    """The contract's error envelope (§3)."""
    return {"error": {"code": code, "message": message, "details": details}}


def bad_request(exc: ValidationError) -> dict[str, Any]:
    """A ValidationError as the 400 body a partner gets."""
    return error_envelope(400, "invalid request body", all_errors(exc))


def validate_body(family: str, document: Any) -> RequestBase:
    """The typed request of ``family``; raises ``ValidationError`` (→ ``bad_request``) or ``KeyError``."""
    return REQUEST_MODELS[family].model_validate(document)


def request_error(family: str, body: bytes) -> dict[str, Any] | None:
    """For the receiver, before storing: the 400 envelope for a body ``family`` would refuse, else None.

    The pipeline validates again (``StandardAdapter.parse``) with the same models, so a body accepted here
    cannot fail there for its format; answering 400 up front tells the partner at once instead of via a
    ``failed`` operation.
    """
    try:
        document = load_json(body)
    except UnparseablePayload as exc:
        return error_envelope(400, "invalid request body", exc.message)
    try:
        validate_body(family, document)
    except ValidationError as exc:
        return bad_request(exc)
    return None
