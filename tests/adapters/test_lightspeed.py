"""Lightspeed K-Series edge cases: Basic-auth secret forms, restriction counts, readiness."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ingest.adapters.lightspeed import LightspeedAdapter
from ingest.errors import InvalidSignature
from tests.adapters.cases import Case


def _case(body: object, **meta: object) -> Case:
    return Case("lightspeed", "edge", Path("."), json.dumps(body).encode(), {}, dict(meta))


def _commands(case: Case) -> list:  # type: ignore[type-arg]
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    return adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))


def _basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


def test_secret_as_user_password_or_password_with_username_option() -> None:
    LightspeedAdapter(["acme-webhook:pw"]).verify_signature(_basic("acme-webhook:pw"), b"{}")
    LightspeedAdapter(["pw"], options={"basic_auth_username": "acme-webhook"}).verify_signature(
        _basic("acme-webhook:pw"), b"{}")
    with pytest.raises(InvalidSignature):
        LightspeedAdapter(["pw"], options={"basic_auth_username": "someone"}).verify_signature(
            _basic("acme-webhook:pw"), b"{}")


@pytest.mark.parametrize(("status", "count", "expected"), [
    ("RESTRICTED", 0, (False, "0", "snooze")),
    ("RESTRICTED", None, (False, None, "snooze")),
    ("RESTRICTED", 3, (True, "3", "adjustment")),
    ("NOT_RESTRICTED", None, (True, None, "snooze")),
])
def test_sales_restrictions(status: str, count: int | None, expected: tuple) -> None:  # type: ignore[type-arg]
    body = {"sku": "S", "type": "ITEM", "count": count, "status": status, "businessLocationId": 1}
    c = _commands(_case(body))[0]
    assert (c.available, c.quantity, c.reason) == expected


@pytest.mark.parametrize(("status", "period", "accepting", "expected"), [
    ("READY", "OPENED", True, "OPEN"), ("NOT_READY", "OPENED", True, "PAUSED"),
    ("READY", "OPENED", False, "PAUSED"), ("READY", "CLOSED", True, "CLOSED"),
])
def test_readiness(status: str, period: str, accepting: bool, expected: str) -> None:
    body = {"businessLocationId": 1, "status": status, "type": "ORDER_API",
            "posStatus": {"salesPeriod": period, "acceptingOnlineOrders": accepting}}
    assert _commands(_case(body))[0].status == expected


def test_pulled_menu_takes_the_location_the_poller_recorded() -> None:
    body = {"ikentooMenuId": 5, "menuEntryGroups": [{"name": "G", "menuEntry": [
        {"@type": "menuGroup", "menuEntry": [{"@type": "menuItem", "sku": "X", "productPrice": 0.1}]}]}]}
    case = Case("lightspeed", "edge", Path("."), json.dumps(body).encode(), {"X-Business-Location-Id": "77"},
                {"route": "pull", "tenant": {"default_currency": "EUR"}})
    (command,) = _commands(case)
    assert (command.external_item_id, command.amount_minor, command.category) == ("X", 10, "G")
    assert command.store_id is not None
