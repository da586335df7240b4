"""Standard API: 400 texts, date-times, dedupe scoping, outlet registration and the OpenAPI doc."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from ingest.adapters.base import Headers, RawDelivery
from ingest.adapters.standard import ROUTES, StandardAdapter, openapi, route_family, store_mappings
from ingest.adapters.standard import payloads as p
from ingest.adapters.standard.adapter import ROUTE_METHODS
from ingest.canonical.mapping import MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent
from pydantic import ValidationError

from tests.adapters.cases import RECEIVED_AT, TENANT, load_cases

INR = {"currency": "INR"}


def _product(n: int, amount: int = 1000) -> dict[str, Any]:
    return {"id": f"P-{n}", "name": f"Product {n}", "price": {"amountMinor": amount, **INR}}


def _error(family: str, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        p.validate_body(family, body)
    return p.first_error(info.value)


def _delivery(
    family: str,
    body: bytes | dict[str, Any],
    *,
    route: str | None = None,
    raw_id: str = "r-1",
    headers: dict[str, str] | None = None,
) -> RawDelivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawDelivery(
        body=raw,
        headers=Headers(headers or {}),
        raw_id=raw_id,
        tenant_id=TENANT,
        provider="standard",
        family=family,
        received_at=RECEIVED_AT,
        route=route if route is not None else ROUTES[family],
    )


# --- 400 texts name the first offending field -------------------------------------------------
class TestValidationErrors:
    def test_negative_amount_names_the_product_index_and_field(self) -> None:
        body = {"outletIds": ["OUT-1"], "products": [_product(0), _product(1), _product(2), _product(3, -5)]}
        assert (
            _error("products.sync", body)
            == "products[3].price.amountMinor: Input should be greater than or equal to 0"
        )

    def test_the_documented_400_example_is_what_the_helper_really_produces(self) -> None:
        body = {"outletIds": ["OUT-1"], "products": [_product(0), _product(1), _product(2), _product(3, -5)]}
        with pytest.raises(ValidationError) as info:
            p.validate_body("products.sync", body)
        envelope = p.bad_request(info.value)
        assert envelope == {
            "error": {"code": 400, "message": "invalid request body", "details": openapi.ERRORS[400][1]}
        }

    def test_first_error_is_the_first_in_document_order(self) -> None:
        body = {"outletIds": ["OUT-1"], "products": [_product(0, -1), {"id": "P-1"}]}
        assert _error("products.sync", body).startswith("products[0].price.amountMinor:")

    def test_a_400_names_every_offending_field_then_how_many_more(self) -> None:
        body = {"outletIds": ["OUT-1"], "products": [_product(0, -1), {"id": "P-1"}]}
        with pytest.raises(ValidationError) as info:
            p.validate_body("products.sync", body)
        assert p.bad_request(info.value)["error"]["details"] == (
            "products[0].price.amountMinor: Input should be greater than or equal to 0; "
            "products[1].name: required field is missing")
        many = {"outletIds": ["OUT-1"], "products": [_product(n, -1) for n in range(13)]}
        with pytest.raises(ValidationError) as info:
            p.validate_body("products.sync", many)
        details = p.bad_request(info.value)["error"]["details"]
        assert details.count("amountMinor") == p.MAX_NAMED_ERRORS and details.endswith("; and 3 more")

    def test_a_typo_is_an_unknown_field_not_silently_dropped(self) -> None:
        body = {"outletIds": ["OUT-1"], "products": [{"id": "P-0", "name": "x", "prise": {"amountMinor": 1}}]}
        assert (
            _error("products.sync", body)
            == "products[0].prise: unknown field (check the spelling; field names are camelCase)"
        )

    def test_snake_case_is_refused_on_the_wire(self) -> None:
        assert _error("outlets.busy", {"busy": True, "delay_minutes": 5}).startswith(
            "delay_minutes: unknown field"
        )

    def test_missing_field(self) -> None:
        assert (
            _error("outlets.sync", {"outlets": [{"id": "OUT-1", "status": "OPEN"}]})
            == "outlets[0].name: required field is missing"
        )

    def test_unknown_currency(self) -> None:
        body = {
            "outletIds": ["OUT-1"],
            "products": [{"id": "P", "name": "x", "price": {"amountMinor": 1, "currency": "XYZ"}}],
        }
        assert (
            _error("products.sync", body)
            == "products[0].price.currency: not an ISO 4217 currency code: 'XYZ'"
        )

    def test_float_amount_is_refused(self) -> None:
        body = {
            "outletIds": ["OUT-1"],
            "products": [{"id": "P", "name": "x", "price": {"amountMinor": 12.99, "currency": "INR"}}],
        }
        assert _error("products.sync", body).startswith("products[0].price.amountMinor:")

    def test_mixed_currencies_name_the_first_price_that_differs(self) -> None:
        body = {
            "outletIds": ["OUT-1"],
            "products": [
                _product(0),
                {
                    "id": "P-1",
                    "name": "x",
                    "variants": [{"id": "V-1", "price": {"amountMinor": 100, "currency": "USD"}}],
                },
            ],
        }
        assert _error("products.sync", body) == (
            "products[1].variants[0].price.currency: every price in one "
            "request must use the same currency (the first was INR)"
        )

    def test_unknown_modifier_group_reference(self) -> None:
        body = {
            "outletIds": ["OUT-1"],
            "modifierGroups": [{"id": "MG-1", "name": "Crust", "options": [{"id": "O-1", "name": "Thin"}]}],
            "products": [{"id": "P", "name": "x", "modifierGroupIds": ["MG-1", "MG-2"]}],
        }
        assert (
            _error("products.sync", body)
            == "products[0].modifierGroupIds[1]: no modifier group 'MG-2' in modifierGroups"
        )

    def test_modifier_group_max_below_min(self) -> None:
        body = {
            "outletIds": ["OUT-1"],
            "modifierGroups": [
                {
                    "id": "MG-1",
                    "name": "Crust",
                    "min": 2,
                    "max": 1,
                    "options": [{"id": "O-1", "name": "Thin"}],
                }
            ],
            "products": [{"id": "P", "name": "x"}],
        }
        assert _error("products.sync", body) == "modifierGroups[0]: max (1) must be at least min (2)"

    def test_repeated_ids(self) -> None:
        assert (
            _error(
                "products.sync", {"outletIds": ["OUT-1"], "products": [_product(0), _product(1), _product(0)]}
            )
            == "products[2].id: 'P-0' repeats products[0]"
        )
        assert (
            _error(
                "outlets.sync",
                {
                    "outlets": [
                        {"id": "A", "name": "a", "status": "OPEN"},
                        {"id": "A", "name": "b", "status": "OPEN"},
                    ]
                },
            )
            == "outlets[1]: 'A' repeats outlets[0]"
        )

    def test_outlets_times_products_is_bounded(self) -> None:
        body = {"outletIds": [f"O-{i}" for i in range(11)], "products": [_product(n) for n in range(5000)]}
        assert _error("products.sync", body) == (
            "outletIds × products: 55000 outlet lines, at most 50000 per request; split the outlets over "
            "several requests"
        )

    def test_outlet_ids_must_be_usable_in_a_path(self) -> None:
        assert _error(
            "outlets.sync", {"outlets": [{"id": "BLR/01", "name": "a", "status": "OPEN"}]}
        ).startswith("outlets[0].id: String should match pattern")

    def test_busy_needs_a_delay_and_open_takes_none(self) -> None:
        assert _error("outlets.busy", {"busy": True}) == "delayMinutes: required when busy is true"
        assert (
            _error("outlets.busy", {"busy": False, "delayMinutes": 5})
            == "delayMinutes/until: only when busy is true"
        )
        assert _error("outlets.busy", {"busy": True, "delayMinutes": 0}).startswith("delayMinutes:")

    def test_status_open_takes_no_until(self) -> None:
        assert (
            _error("outlets.status", {"status": "OPEN", "until": "2026-01-14T10:00:00Z"})
            == "until: only with status CLOSED or PAUSED"
        )

    def test_order_status_outside_the_contract_list(self) -> None:
        assert _error("orders.status", {"outletId": "OUT-1", "status": "DELIVERED"}).startswith(
            "status: Input should be"
        )

    def test_quantities_are_decimal_strings_or_integers_never_floats(self) -> None:
        def stock(q: object) -> dict[str, Any]:
            return {"outletIds": ["OUT-1"], "products": [{"id": "P", "name": "x", "stock": {"quantity": q}}]}

        assert _error("products.sync", stock(2.5)).startswith(
            "products[0].stock.quantity: must be a decimal string"
        )
        assert _error("products.sync", stock("-1")).startswith("products[0].stock.quantity:")
        request = p.validate_body("products.sync", stock(3))
        assert request.products[0].stock.quantity == "3"  # type: ignore[attr-defined]
        assert _error(
            "products.sync",
            {
                "outletIds": ["OUT-1"],
                "products": [{"id": "P", "name": "x", "stock": {"quantity": "1", "unit": "furlong"}}],
            },
        ).startswith("products[0].stock.unit: unknown unit 'furlong'")


# --- RFC 3339 date-times ----------------------------------------------------------------------
class TestDateTimes:
    @pytest.mark.parametrize(
        "text", ["2026-01-14T10:15:00", "2026-01-14T10:15:00.123", "2026-01-14 10:15:00"]
    )
    def test_naive_date_time_is_rejected_with_a_clear_message(self, text: str) -> None:
        assert _error("outlets.status", {"status": "CLOSED", "until": text}) == (
            "until: date-time has no UTC offset: add Z or ±HH:MM (e.g. 2026-01-14T10:15:00Z or "
            "2026-01-14T15:45:00+05:30)"
        )

    @pytest.mark.parametrize(
        "value",
        [1768385700, "2026-01-14", "14/01/2026 10:15", "2026-01-14T10:15:00+0530", "2026-02-30T10:00:00Z"],
    )
    def test_other_spellings_are_rejected(self, value: object) -> None:
        assert _error("outlets.status", {"status": "CLOSED", "until": value}).startswith("until: ")

    @pytest.mark.parametrize(
        ("text", "utc"),
        [
            ("2026-01-14T15:45:00+05:30", datetime(2026, 1, 14, 10, 15, tzinfo=timezone.utc)),
            ("2026-01-14T10:15:00Z", datetime(2026, 1, 14, 10, 15, tzinfo=timezone.utc)),
            ("2026-01-14t10:15:00z", datetime(2026, 1, 14, 10, 15, tzinfo=timezone.utc)),
            ("2026-01-14T05:15:00-05:00", datetime(2026, 1, 14, 10, 15, tzinfo=timezone.utc)),
            ("2026-01-14T10:15:00.123456789Z", datetime(2026, 1, 14, 10, 15, 0, 123456, tzinfo=timezone.utc)),
        ],
    )
    def test_offsets_are_accepted_and_normalised_to_utc(self, text: str, utc: datetime) -> None:
        request = p.validate_body("outlets.status", {"status": "CLOSED", "until": text})
        until = request.until  # type: ignore[attr-defined]
        assert until == utc
        assert until.utcoffset().total_seconds() == 0

    def test_commands_carry_utc(self) -> None:
        adapter = StandardAdapter()
        source = adapter.parse(
            _delivery(
                "outlets.status",
                {
                    "status": "PAUSED",
                    "until": "2026-01-14T18:00:00+05:30",
                    "occurredAt": "2026-01-14T15:00:00+05:30",
                },
                route="/api/v1/outlets/OUT-1/status",
            )
        )
        [command] = adapter.to_canonical_commands(source, _context(adapter, source))
        record = json.loads(command.model_dump_json(by_alias=True))
        assert record["until"] == "2026-01-14T12:30:00Z"
        assert record["occurredAt"] == "2026-01-14T09:30:00Z"


def _context(adapter: StandardAdapter, source: Any) -> Any:
    from ingest.canonical.mapping import MappingContext, auto_canonical_id

    keys = adapter.mapping_keys(source)
    return MappingContext(TENANT, "standard", {k: auto_canonical_id(TENANT, "standard", k) for k in keys})


# --- the adapter --------------------------------------------------------------------------------
class TestAdapter:
    def test_verify_signature_is_a_no_op(self) -> None:
        assert StandardAdapter.auth.unsigned and not StandardAdapter.auth.covers_body
        assert StandardAdapter().verify_signature({}, b"anything") is None

    def test_route_family_for_the_receiver(self) -> None:
        assert route_family("PATCH", "/api/v1/outlets/OUT-1/busy") == ("outlets.busy", "OUT-1")
        assert route_family("patch", "/api/v1/orders/ORD-9/status") == ("orders.status", "ORD-9")
        assert route_family("POST", "/api/v1/outlets/sync") == ("outlets.sync", None)
        assert route_family("GET", "/api/v1/outlets/sync") is None
        assert route_family("PATCH", "/api/v1/outlets/a/b/status") is None
        # "sync" is a literal route, not an outlet id, for POST; as a PATCH id it is just an id
        assert route_family("PATCH", "/api/v1/outlets/sync/status") == ("outlets.status", "sync")

    def test_path_id_reaches_the_command(self) -> None:
        adapter = StandardAdapter()
        source = adapter.parse(
            _delivery("outlets.busy", {"busy": True, "delayMinutes": 15}, route="/api/v1/outlets/OUT-7/busy")
        )
        [command] = adapter.to_canonical_commands(source, _context(adapter, source))
        assert (command.external_store_id, command.status, command.busy_delay_minutes) == (
            "OUT-7",
            "BUSY",
            15,
        )  # type: ignore[attr-defined]

    def test_route_not_matching_the_family_is_unparseable(self) -> None:
        with pytest.raises(UnparseablePayload, match="does not match"):
            StandardAdapter().parse(_delivery("outlets.busy", {"busy": False}, route="/api/v1/outlets/sync"))

    def test_invalid_body_is_unparseable_and_names_the_field(self) -> None:
        with pytest.raises(UnparseablePayload) as info:
            StandardAdapter().parse(
                _delivery("orders.status", {"outletId": "OUT-1"}, route="/api/v1/orders/ORD-1/status")
            )
        assert info.value.reason_code == "invalid_request"
        assert "status: required field is missing" in info.value.message

    def test_unknown_family_is_unsupported(self) -> None:
        with pytest.raises(UnsupportedEvent):
            StandardAdapter().parse(_delivery("menus.sync", b"{}", route="/api/v1/menus/sync"))

    def test_merchant_defaults_to_the_tenant(self) -> None:
        adapter = StandardAdapter()
        source = adapter.parse(_delivery("outlets.busy", {"busy": False}, route="/api/v1/outlets/O/busy"))
        assert {str(k) for k in adapter.mapping_keys(source)} == {f"merchant:{TENANT}", "store:O"}
        source = adapter.parse(
            _delivery(
                "outlets.busy", {"busy": False, "merchantId": "brand-2"}, route="/api/v1/outlets/O/busy"
            )
        )
        assert "merchant:brand-2" in {str(k) for k in adapter.mapping_keys(source)}

    def test_store_mappings_lists_the_synced_outlets_only(self) -> None:
        adapter = StandardAdapter()
        body = {
            "outlets": [
                {"id": "A-1", "name": "a", "status": "OPEN"},
                {"id": "B-2", "name": "b", "status": "CLOSED"},
            ]
        }
        assert store_mappings(adapter.parse(_delivery("outlets.sync", body))) == [
            ("A-1", None),
            ("B-2", None),
        ]
        assert adapter.declared_mappings(adapter.parse(_delivery("outlets.sync", body))) == [
            (MappingKey("merchant", TENANT), None),
            (MappingKey("store", "A-1"), None),
            (MappingKey("store", "B-2"), None),
        ]
        busy = adapter.parse(_delivery("outlets.busy", {"busy": False}, route="/api/v1/outlets/A-1/busy"))
        # a status call refers to an outlet, it does not declare one
        assert adapter.declared_mappings(busy) == [(MappingKey("merchant", TENANT), None)]
        products = {"outletIds": ["A-1"], "products": [{"id": "P-1", "name": "p", "variants": [{"id": "V-1"}]}]}
        assert adapter.declared_mappings(adapter.parse(_delivery("products.sync", products))) == [
            (MappingKey("merchant", TENANT), None),
            (MappingKey("store", "A-1"), None),
            (MappingKey("item", "P-1"), None),
            (MappingKey("variant", "V-1"), None),
        ]
        assert (
            store_mappings(
                adapter.parse(_delivery("outlets.busy", {"busy": False}, route="/api/v1/outlets/A-1/busy"))
            )
            == []
        )


class TestDedupe:
    def _key(
        self,
        family: str,
        body: dict[str, Any],
        route: str,
        raw_id: str = "r-1",
        headers: dict[str, str] | None = None,
    ) -> str:
        adapter = StandardAdapter()
        return adapter.dedupe_key(
            adapter.parse(_delivery(family, body, route=route, raw_id=raw_id, headers=headers))
        )

    def test_same_body_to_two_outlets_does_not_collide(self) -> None:
        body = {"busy": True, "delayMinutes": 10, "occurredAt": "2026-01-14T10:00:00Z"}
        assert self._key("outlets.busy", body, "/api/v1/outlets/A/busy") != self._key(
            "outlets.busy", body, "/api/v1/outlets/B/busy"
        )
        body = {"busy": True, "delayMinutes": 10, "refCode": "r-77"}
        assert self._key("outlets.busy", body, "/api/v1/outlets/A/busy") != self._key(
            "outlets.busy", body, "/api/v1/outlets/B/busy"
        )

    def test_ref_code_makes_a_retry_a_duplicate(self) -> None:
        first = self._key(
            "outlets.status", {"status": "OPEN", "refCode": "x-1"}, "/api/v1/outlets/A/status", "r-1"
        )
        again = self._key(
            "outlets.status", {"refCode": "x-1", "status": "OPEN"}, "/api/v1/outlets/A/status", "r-2"
        )
        assert first == again == "standard:ref:/api/v1/outlets/A/status:x-1"

    def test_idempotency_key_header_is_the_fallback_identity(self) -> None:
        key = self._key(
            "outlets.status",
            {"status": "OPEN"},
            "/api/v1/outlets/A/status",
            "r-1",
            headers={"idempotency-key": "k-9"},
        )
        assert key == "standard:ref:/api/v1/outlets/A/status:k-9"

    def test_timestamped_body_dedupes_by_route_and_hash(self) -> None:
        body = {"status": "CLOSED", "occurredAt": "2026-01-14T10:00:00Z"}
        assert self._key("outlets.status", body, "/api/v1/outlets/A/status", "r-1") == self._key(
            "outlets.status", body, "/api/v1/outlets/A/status", "r-2"
        )

    def test_open_close_open_without_identity_is_never_a_duplicate(self) -> None:
        first = self._key("outlets.status", {"status": "OPEN"}, "/api/v1/outlets/A/status", "r-1")
        third = self._key("outlets.status", {"status": "OPEN"}, "/api/v1/outlets/A/status", "r-3")
        assert first != third
        assert first.startswith("standard:")


# --- OpenAPI ----------------------------------------------------------------------------------
class TestOpenApi:
    def test_document_is_valid_openapi_3_1(self) -> None:
        validator = pytest.importorskip("openapi_spec_validator")
        doc = openapi.openapi_document()
        assert doc["openapi"] == "3.1.0"
        validator.validate(doc)

    def test_every_operation_is_present(self) -> None:
        paths = openapi.openapi_document()["paths"]
        expected = {(ROUTE_METHODS[f].lower(), route) for f, route in ROUTES.items()} | {
            ("get", "/api/v1/auth/whoami"),
            ("get", "/api/v1/operations/{rawId}"),
        }
        got = {(method, path) for path, item in paths.items() for method in item}
        assert got == expected
        assert len(expected) == 7

    def test_writes_document_202_every_error_and_the_idempotency_key(self) -> None:
        doc = openapi.openapi_document()
        for family, route in ROUTES.items():
            op = doc["paths"][route][ROUTE_METHODS[family].lower()]
            assert set(op["responses"]) == {"202", "400", "401", "404", "409", "413", "415", "429", "503"}
            assert {"$ref": "#/components/parameters/IdempotencyKey"} in op["parameters"]
            assert op["requestBody"]["content"]["application/json"]["schema"] == {
                "$ref": f"#/components/schemas/{p.REQUEST_MODELS[family].__name__}"
            }
        assert doc["components"]["securitySchemes"]["ApiKey"] == {
            **doc["components"]["securitySchemes"]["ApiKey"],
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
        }
        assert doc["security"] == [{"ApiKey": []}]
        for code in (429, 503):
            assert "Retry-After" in doc["components"]["responses"][f"Error{code}"]["headers"]

    def test_every_ref_resolves(self) -> None:
        doc = openapi.openapi_document()
        refs = set(re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(doc)))
        assert refs
        for ref in refs:
            node: Any = doc
            for part in ref.split("/"):
                node = node[part]

    @pytest.mark.parametrize("family", list(openapi.OPERATIONS))
    def test_every_documented_example_is_a_valid_request(self, family: str) -> None:
        for body in openapi.OPERATIONS[family][3].values():
            p.validate_body(family, body)

    def test_schemas_use_camel_case_and_forbid_extra_fields(self) -> None:
        schemas = openapi.openapi_document()["components"]["schemas"]
        product = schemas["Product"]
        assert {"imageUrls", "salePrice", "availableAgainAt", "modifierGroupIds"} <= set(
            product["properties"]
        )
        assert product["additionalProperties"] is False
        assert schemas["Money"]["properties"]["amountMinor"]["minimum"] == 0
        assert schemas["OperationFailure"]["required"] == ["class", "reasonCode", "message"]

    def test_document_is_deterministic_and_copies_are_independent(self) -> None:
        first = openapi.openapi_document()
        first["paths"].clear()
        second = openapi.openapi_document()
        assert second["paths"]
        assert json.dumps(second, sort_keys=True) == json.dumps(openapi.openapi_document(), sort_keys=True)
        assert openapi.openapi_document("http://acme.localhost:8080")["servers"] == [
            {"url": "http://acme.localhost:8080"}
        ]

    def test_docs_page_is_self_contained(self) -> None:
        html = (Path(openapi.__file__).parent / "docs.html").read_text()
        assert 'fetch("/openapi.json"' in html
        # nothing loaded from elsewhere: no external scripts, styles, fonts or images
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
        assert "@import" not in html and "url(" not in html


def test_recorded_cases_cover_every_operation() -> None:
    families = {c.family for c in load_cases("standard") if c.expect == "commands"}
    assert families == set(ROUTES)


def test_every_curl_example_in_the_partner_guide_is_a_valid_request() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "partner-api.md").read_text()
    calls = re.findall(r'curl -s -X (\w+) "\$BASE(/[^"]+)".*?-d \'(.*?)\'', guide, re.S)
    assert len(calls) >= 9
    families = set()
    for method, path, body in calls:
        routed = route_family(method, path)
        assert routed, f"{method} {path} is not a Standard API route"
        families.add(routed[0])
        if "occurredAt\": \"2026-01-14T10:15:00\"" in body:  # the documented 400 example
            with pytest.raises(ValidationError):
                p.validate_body(routed[0], json.loads(body))
            continue
        p.validate_body(routed[0], json.loads(body))
    assert families == set(ROUTES)


class TestRequestError:
    def test_valid_body_passes(self) -> None:
        assert p.request_error("outlets.busy", b'{"busy": false}') is None

    def test_not_json(self) -> None:
        envelope = p.request_error("outlets.busy", b'{"busy": fals')
        assert envelope is not None and envelope["error"]["code"] == 400
        assert envelope["error"]["details"].startswith("not valid JSON")

    def test_duplicate_json_keys_are_refused(self) -> None:
        envelope = p.request_error("outlets.busy", b'{"busy": true, "busy": false}')
        assert envelope is not None and "duplicate key 'busy'" in envelope["error"]["details"]

    def test_invalid_body_names_the_field(self) -> None:
        assert p.request_error("outlets.status", b'{"status": "SHUT"}') == {
            "error": {
                "code": 400,
                "message": "invalid request body",
                "details": "status: Input should be 'OPEN', 'CLOSED' or 'PAUSED'",
            }
        }
