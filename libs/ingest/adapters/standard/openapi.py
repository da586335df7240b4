"""The partner Standard API as an OpenAPI 3.1 document, built from the same pydantic models that validate."""
from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ingest.adapters.standard import payloads as p
from ingest.adapters.standard.adapter import ROUTE_METHODS, ROUTES

REF = "#/components/schemas/{model}"
API_VERSION = "1.0.0"

#: every model the document names; the request models come from ``payloads.REQUEST_MODELS``
_MODELS: list[type[BaseModel]] = [*p.REQUEST_MODELS.values(), p.Accepted, p.WhoAmI, p.Operation,
                                  p.ErrorEnvelope]

#: family → (summary, description, tag, {example name: body}); every example is validated by the tests
OPERATIONS: dict[str, tuple[str, str, str, dict[str, dict[str, Any]]]] = {
    "outlets.sync": (
        "Register or update outlets",
        "Declares your outlets. Each outlet becomes a store of your tenant (registered on first sync) "
        "and its current status is published. Send all outlets or only the changed ones; outlets you "
        "leave out are not touched. Outlet ids are then used in `/api/v1/outlets/{id}/…`.",
        "Outlets",
        {"two outlets": {
            "refCode": "outlets-2026-01-14-001",
            "outlets": [
                {"id": "BLR-IND-01", "name": "Acme Pizza Indiranagar", "status": "OPEN",
                 "timezone": "Asia/Kolkata"},
                {"id": "BLR-KOR-02", "name": "Acme Pizza Koramangala", "status": "CLOSED"},
            ]}}),
    "products.sync": (
        "Sync the catalogue of outlets",
        "The full catalogue of the listed outlets: products (merchant-wide), their variants, and per outlet "
        "the price, availability and stock. With `menu`, every product is also a menu item with its modifier "
        "groups. Prices are integer minor units with an ISO 4217 currency; one currency per request. A "
        "variant without its own price sells at the product's price.",
        "Catalogue",
        {"restaurant menu": {
            "refCode": "menu-push-8812",
            "outletIds": ["BLR-IND-01"],
            "menu": {"id": "ALL-DAY", "name": "All day menu"},
            "modifierGroups": [{"id": "MG-CRUST", "name": "Choose your crust", "min": 1, "max": 1,
                                "options": [
                                    {"id": "OPT-CRUST-CLASSIC", "name": "Classic hand tossed"},
                                    {"id": "OPT-CRUST-THIN", "name": "Thin crust",
                                     "price": {"amountMinor": 4000, "currency": "INR"}},
                                ]}],
            "products": [
                {"id": "PZ-MARG", "name": "Margherita", "category": "Pizzas",
                 "price": {"amountMinor": 29900, "currency": "INR"}, "modifierGroupIds": ["MG-CRUST"]},
                {"id": "PZ-PEPP", "name": "Pepperoni", "category": "Pizzas",
                 "price": {"amountMinor": 39900, "currency": "INR"}, "available": False,
                 "availableAgainAt": "2026-01-14T18:00:00+05:30"},
            ]},
         "dark-store catalogue with variants and stock": {
            "outletIds": ["DS-BLR-HSR-01", "DS-BLR-WHF-02"],
            "products": [
                {"id": "SKU-ATTA-AASH", "name": "Aashirvaad Whole Wheat Atta", "brand": "Aashirvaad",
                 "variants": [
                     {"id": "SKU-ATTA-AASH-5KG", "name": "5 kg", "gtin": "8901725181222",
                      "price": {"amountMinor": 28500, "currency": "INR"},
                      "salePrice": {"amountMinor": 26900, "currency": "INR"},
                      "stock": {"quantity": "34", "unit": "pack"}},
                 ]},
                {"id": "SKU-BANANA-ROB", "name": "Banana Robusta",
                 "price": {"amountMinor": 5900, "currency": "INR"},
                 "stock": {"quantity": "18.75", "unit": "kg"}},
            ]}}),
    "outlets.status": (
        "Open, close or pause an outlet",
        "`PAUSED` keeps the outlet open but stops new orders. `until` (CLOSED/PAUSED) says when it reopens.",
        "Outlets",
        {"closed until tomorrow": {"status": "CLOSED", "until": "2026-01-15T09:00:00+05:30",
                                   "reason": "Power outage"},
         "open": {"status": "OPEN"}}),
    "outlets.busy": (
        "Set busy mode (extra preparation time) or end it",
        "`busy: true` with `delayMinutes` publishes BUSY; `busy: false` puts the outlet back to OPEN.",
        "Outlets",
        {"busy for 20 minutes": {"busy": True, "delayMinutes": 20, "until": "2026-01-14T14:30:00Z"},
         "back to normal": {"busy": False}}),
    "orders.status": (
        "Report an order's status",
        "`{id}` is the order id as we sent the order to you. Statuses: ACCEPTED, PREPARING, READY, "
        "PICKED_UP, COMPLETED, REJECTED, CANCELLED, FAILED.",
        "Orders",
        {"preparing": {"outletId": "BLR-IND-01", "status": "PREPARING", "partnerOrderRef": "KOT-1187",
                       "occurredAt": "2026-01-14T10:14:02+05:30"},
         "cancelled": {"outletId": "BLR-IND-01", "status": "CANCELLED",
                       "reason": "Customer called to cancel"}}),
}

#: status → (description, example details) of the error envelope
ERRORS: dict[int, tuple[str, str]] = {
    400: ("The body is not valid JSON or breaks the format; `details` names every offending field (up to 10, `; `-separated).",
          "products[3].price.amountMinor: Input should be greater than or equal to 0"),
    401: ("Missing, invalid, expired or revoked `X-Api-Key`, or a key of another tenant.",
          "a valid X-Api-Key for this tenant is required"),
    404: ("Unknown tenant (host), route or operation.", "no such operation for this tenant"),
    409: ("This `Idempotency-Key` was already used with a different body (or its first request is still "
          "being stored).", "Idempotency-Key reused with a different request body"),
    413: ("The body is larger than the limit.", "request body exceeds the limit"),
    415: ("Only `application/json` is accepted.", "Content-Type must be application/json"),
    429: ("Too many requests for this API key; retry after `Retry-After` seconds.", "rate limit exceeded"),
    503: ("Storage is unavailable; nothing was stored. Retry after `Retry-After` seconds (same "
          "`Idempotency-Key`).", "storage temporarily unavailable"),
}
_PATH_ID = {"type": "string", "pattern": r"^[A-Za-z0-9._~:@-]+$", "maxLength": 100}  # payloads.PathId
_WRITE_ERRORS = (400, 401, 404, 409, 413, 415, 429, 503)
_READ_ERRORS = (401, 404, 429, 503)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema([(m, "validation") for m in _MODELS], ref_template=REF)
    return dict(sorted(top.get("$defs", {}).items()))


def _error_response(code: int) -> dict[str, Any]:
    description, details = ERRORS[code]
    short = {400: "invalid request body", 401: "unauthorized", 404: "not found", 409: "conflict",
             413: "payload too large", 415: "unsupported media type", 429: "too many requests",
             503: "service unavailable"}[code]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(p.ErrorEnvelope), "example": p.error_envelope(
            code, short, details)}},
    }
    if code in (429, 503):
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _write_operation(family: str) -> dict[str, Any]:
    summary, description, tag, examples = OPERATIONS[family]
    model = p.REQUEST_MODELS[family]
    parameters: list[dict[str, Any]] = [{"$ref": "#/components/parameters/IdempotencyKey"}]
    if "{id}" in ROUTES[family]:
        parameters.insert(0, {"$ref": "#/components/parameters/OrderId" if family.startswith("orders.")
                              else "#/components/parameters/OutletId"})
    return {
        "operationId": family.replace(".", "_"),
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": parameters,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref(model),
            "examples": {name: {"summary": name, "value": body} for name, body in examples.items()},
        }}},
        "responses": {
            "202": {"description": "Stored durably; processing follows. A replay with the same "
                                   "`Idempotency-Key` and body returns this same response.",
                    "content": {"application/json": {"schema": _ref(p.Accepted), "example": {
                        "rawId": "0f4b7f58-1c2e-4c55-9a43-7e0d3cbb2a10", "status": "accepted"}}}},
            **{str(code): {"$ref": f"#/components/responses/Error{code}"} for code in _WRITE_ERRORS},
        },
    }


def _read_paths() -> dict[str, Any]:
    errors = {str(code): {"$ref": f"#/components/responses/Error{code}"} for code in _READ_ERRORS}
    return {
        "/api/v1/auth/whoami": {"get": {
            "operationId": "auth_whoami", "summary": "Check your API key", "tags": ["Auth"],
            "description": "Which tenant and key this request authenticated as. A key is valid only on its "
                           "own tenant's host.",
            "responses": {"200": {"description": "Authenticated", "content": {"application/json": {
                "schema": _ref(p.WhoAmI), "example": {"authenticated": True, "tenantId": "acme",
                                                      "apiKeyId": 7, "expiresAt": "2027-01-01T00:00:00Z"}}}},
                          **{k: v for k, v in errors.items() if k != "404"}},
        }},
        "/api/v1/operations/{rawId}": {"get": {
            "operationId": "operations_get", "summary": "What became of a submission", "tags": ["Operations"],
            "parameters": [{"name": "rawId", "in": "path", "required": True,
                            "description": "the `rawId` of a 202",
                            "schema": {"type": "string", "format": "uuid"}}],
            "responses": {"200": {"description": "The submission's state", "content": {"application/json": {
                "schema": _ref(p.Operation),
                "examples": {
                    "processed": {"value": {"rawId": "0f4b7f58-1c2e-4c55-9a43-7e0d3cbb2a10",
                                            "status": "processed",
                                            "provider": "standard", "family": "products.sync",
                                            "receivedAt": "2026-01-14T10:16:00Z",
                                            "commands": {"UpsertCatalogItem": 2, "UpsertMenuItem": 2,
                                                         "UpdatePrice": 2, "UpdateStockLevel": 2}}},
                    "failed": {"value": {"rawId": "6d1f4c0a-8a0e-4f4e-9d8b-2b1b9f0f6e21", "status": "failed",
                                         "provider": "standard", "family": "orders.status",
                                         "receivedAt": "2026-01-14T10:16:00Z", "commands": {},
                                         "failure": {"class": "mapping", "reasonCode": "unmapped_reference",
                                                     "message": "no canonical id for store:BLR-XXX-99"}}},
                }}}}, **errors},
        }},
    }


@cache
def _document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    paths["/api/v1/auth/whoami"] = _read_paths()["/api/v1/auth/whoami"]
    for family, path in ROUTES.items():
        paths.setdefault(path, {})[ROUTE_METHODS[family].lower()] = _write_operation(family)
    paths["/api/v1/operations/{rawId}"] = _read_paths()["/api/v1/operations/{rawId}"]
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "pos-ingest partner Standard API",
            "version": API_VERSION,
            "description": (
                "Host-to-host API for partners. Your tenant is the first label of the host "
                "(`acme.example.com` → `acme`); authenticate every call with `X-Api-Key`. Writes answer "
                "`202` once the request is durably stored, then flow through the pipeline; follow them with "
                "`GET /api/v1/operations/{rawId}`. Date-times are RFC 3339 with `Z` or `±HH:MM` (naive times "
                "are refused) and are normalised to UTC. Unknown fields are refused (`400`), so a typo never "
                "drops data silently. Send `Idempotency-Key` on writes: a retry with the same key and body "
                "returns the first response; the same key with a different body is `409`."),
        },
        "servers": [{"url": "/", "description": "this host (your tenant's)"}],
        "security": [{"ApiKey": []}],
        "tags": [{"name": n} for n in ("Auth", "Outlets", "Catalogue", "Orders", "Operations")],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"ApiKey": {
                "type": "apiKey", "in": "header", "name": "X-Api-Key",
                "description": "Issued per tenant by `pos-ingest keys issue TENANT`; valid only on that "
                               "tenant's host."}},
            "parameters": {
                "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": False,
                                   "description": "Your unique key for this request (e.g. a UUID). A "
                                                  "replay with the same body returns the first response; the "
                                                  "same key with another body is 409.",
                                   "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
                "OutletId": {"name": "id", "in": "path", "required": True, "description": "your outlet id",
                             "schema": _PATH_ID},
                "OrderId": {"name": "id", "in": "path", "required": True,
                            "description": "the order id as we sent it to you", "schema": _PATH_ID},
            },
            "headers": {"RetryAfter": {"description": "seconds to wait before retrying",
                                       "schema": {"type": "integer", "minimum": 0}}},
            "responses": {f"Error{code}": _error_response(code) for code in sorted(ERRORS)},
        },
    }


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """A fresh copy of the document (callers may mutate it); ``server_url`` replaces the relative server."""
    doc = copy.deepcopy(_document())
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
