"""The partner Standard API end to end through the running receiver, broker, PostgreSQL and S3."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.e2e.helpers import post
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e

OUTLET = "BLR-IND-01"
PRODUCTS = {
    "outletIds": [OUTLET],
    "products": [
        {"id": "SKU-ATTA", "name": "Atta", "variants": [
            {"id": "SKU-ATTA-5KG", "name": "5 kg", "price": {"amountMinor": 28500, "currency": "INR"},
             "stock": {"quantity": "34", "unit": "pack"}}]},
        {"id": "SKU-BANANA", "name": "Banana", "price": {"amountMinor": 5900, "currency": "INR"},
         "stock": {"quantity": "18.75", "unit": "kg"}},
    ],
}


def call(stack: Stack, tenant: str, method: str, path: str, key: str | None, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return post(stack.receiver, tenant, path, data, {**({"X-Api-Key": key} if key else {}), **(headers or {})},
                method=method)


def issue(stack: Stack, tenant: str, *extra: str) -> dict[str, Any]:
    return json.loads(stack.cli("keys", "issue", tenant, *extra).stdout.splitlines()[0])


def wait_operation(stack: Stack, tenant: str, key: str, raw_id: str, *, until: str = "processed",
                   timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body, _ = call(stack, tenant, "GET", f"/api/v1/operations/{raw_id}", key)
        assert status == 200, body
        if body["status"] == until:
            return body
        time.sleep(0.2)
    raise AssertionError(f"operation {raw_id} never became {until}: {body}")


def test_partner_flow_without_auto_create(stack: Stack) -> None:
    tenant = new_tenant(stack)  # no --auto-create-items: the partner's requests declare its catalogue
    issued = issue(stack, tenant)
    key = issued["apiKey"]

    status, me, _ = call(stack, tenant, "GET", "/api/v1/auth/whoami", key)
    assert (status, me) == (200, {"authenticated": True, "tenantId": tenant, "apiKeyId": issued["apiKeyId"],
                                  "expiresAt": None})

    status, outlets, _ = call(stack, tenant, "POST", "/api/v1/outlets/sync", key,
                              {"outlets": [{"id": OUTLET, "name": "Indiranagar", "status": "OPEN"}]})
    assert status == 202 and outlets["status"] == "accepted", outlets
    synced = wait_operation(stack, tenant, key, outlets["rawId"])
    assert synced["commands"] == {"UpdateStoreStatus": 1} and synced["family"] == "outlets.sync"

    status, products, _ = call(stack, tenant, "POST", "/api/v1/products/sync", key, PRODUCTS,
                               {"Idempotency-Key": "sync-1"})
    assert status == 202, products
    raw_id = products["rawId"]
    catalog = stack.consume("catalog.events", until=lambda rs: sum(r["rawId"] == raw_id for r in rs) >= 3)
    assert sorted(r["commandType"] for r in catalog if r["rawId"] == raw_id) == \
        ["UpsertCatalogItem", "UpsertCatalogItem", "UpsertVariant"]
    prices = stack.consume("pricing.events", until=lambda rs: sum(r["rawId"] == raw_id for r in rs) >= 2)
    assert sorted(r["amountMinor"] for r in prices if r["rawId"] == raw_id) == [5900, 28500]
    op = wait_operation(stack, tenant, key, raw_id)
    assert op["commands"] == {"UpdatePrice": 2, "UpdateStockLevel": 3, "UpsertCatalogItem": 2,
                              "UpsertVariant": 1}
    assert op["provider"] == "standard" and op["family"] == "products.sync" and "failure" not in op

    # idempotent replay: the first response, nothing stored again; another body under the same key → 409
    stored = stack.query("SELECT count(*) AS n FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["n"]
    status, again, headers = call(stack, tenant, "POST", "/api/v1/products/sync", key, PRODUCTS,
                                  {"Idempotency-Key": "sync-1"})
    assert (status, again) == (202, products) and headers.get("Idempotent-Replayed") == "true"
    status, conflict, _ = call(stack, tenant, "POST", "/api/v1/products/sync", key,
                               {**PRODUCTS, "products": PRODUCTS["products"][:1]}, {"Idempotency-Key": "sync-1"})
    assert status == 409 and conflict["error"]["code"] == 409, conflict
    assert stack.query("SELECT count(*) AS n FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["n"] == stored

    status, busy, _ = call(stack, tenant, "PATCH", f"/api/v1/outlets/{OUTLET}/busy", key,
                           {"busy": True, "delayMinutes": 20})
    assert status == 202, busy
    events = stack.consume("store-status.events", until=lambda rs: any(r["rawId"] == busy["rawId"] for r in rs))
    [event] = [r for r in events if r["rawId"] == busy["rawId"]]
    assert (event["status"], event["busyDelayMinutes"], event["externalStoreId"]) == ("BUSY", 20, OUTLET)

    status, order, _ = call(stack, tenant, "PATCH", "/api/v1/orders/ORD-1/status", key,
                            {"outletId": OUTLET, "status": "PREPARING", "occurredAt": "2026-01-14T10:14:02+05:30"})
    assert status == 202, order
    events = stack.consume("order-status.events", until=lambda rs: any(r["rawId"] == order["rawId"] for r in rs))
    [event] = [r for r in events if r["rawId"] == order["rawId"]]
    assert (event["status"], event["orderId"]) == ("PREPARING", "ORD-1")

    # an outlet never synced: a mapping failure the partner can see, not a phantom store
    status, ghost, _ = call(stack, tenant, "PATCH", "/api/v1/outlets/NEVER-SYNCED/status", key, {"status": "OPEN"})
    assert status == 202
    failed = wait_operation(stack, tenant, key, ghost["rawId"], until="failed")
    assert failed["failure"]["class"] == "mapping" and failed["commands"] == {}

    stack.cli("keys", "revoke", str(issued["apiKeyId"]))
    status, denied, _ = call(stack, tenant, "GET", "/api/v1/auth/whoami", key)
    assert (status, denied["error"]["message"]) == (401, "unauthorized")


def test_keys_are_tenant_scoped_and_401s_are_uniform(stack: Stack) -> None:
    tenant, other = new_tenant(stack), new_tenant(stack)
    key = issue(stack, tenant)["apiKey"]
    foreign = issue(stack, other, "--expires-in", "1d")
    status, body, _ = call(stack, other, "GET", "/api/v1/auth/whoami", foreign["apiKey"])
    assert status == 200 and body["expiresAt"].endswith("Z")
    # contract §3: a 401 has the same body whatever the reason, a missing key included
    invalid = {"code": 401, "message": "unauthorized", "details": "a valid X-Api-Key for this tenant is required"}
    for presented in (None, "", foreign["apiKey"], key + "x", "pk_1_" + "A" * 43, "garbage", "' OR 1=1 --"):
        status, body, _ = call(stack, tenant, "GET", "/api/v1/auth/whoami", presented)
        assert (status, body) == (401, {"error": invalid}), presented
    # a key of one tenant cannot read another tenant's operations either
    status, op, _ = call(stack, other, "PATCH", "/api/v1/outlets/X-1/busy", foreign["apiKey"], {"busy": False})
    assert status == 202
    status, body, _ = call(stack, tenant, "GET", f"/api/v1/operations/{op['rawId']}", key)
    assert status == 404 and body["error"]["code"] == 404
    expired = issue(stack, tenant, "--expires-in", "1s")
    deadline = time.monotonic() + 10
    while call(stack, tenant, "GET", "/api/v1/auth/whoami", expired["apiKey"])[0] != 401:
        assert time.monotonic() < deadline, "expired key still accepted"
        time.sleep(0.2)
    assert call(stack, tenant, "GET", "/api/v1/auth/whoami", expired["apiKey"])[1] == {"error": invalid}
    audit = stack.wait_for("SELECT actor, action, remote_addr, details FROM audit_log WHERE tenant_id = $1 "
                           "AND action = 'auth.failure'", tenant, check=lambda rows: len(rows) >= 6)
    assert {r["actor"] for r in audit} == {"apikey"} and all(r["remote_addr"] == "127.0.0.1" for r in audit)


def test_bad_requests_are_400_naming_the_field_and_store_nothing(stack: Stack) -> None:
    tenant = new_tenant(stack)
    key = issue(stack, tenant)["apiKey"]
    status, body, _ = call(stack, tenant, "POST", "/api/v1/products/sync", key,
                           {"outletIds": ["A"], "occurredAt": "2026-01-14T10:15:00",
                            "products": [{"id": "P", "name": "p"}]})
    assert status == 400 and body["error"]["details"].startswith("occurredAt: date-time has no UTC offset")
    status, body, _ = call(stack, tenant, "POST", "/api/v1/outlets/sync", key, b"{not json")
    assert status == 400 and body["error"]["message"] == "invalid request body"
    status, body, _ = call(stack, tenant, "POST", "/api/v1/outlets/sync", key, b"{}",
                           {"Content-Type": "text/plain"})
    assert status == 415
    assert stack.query("SELECT count(*) AS n FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["n"] == 0


def test_refcode_is_an_idempotency_key_scoped_by_path(stack: Stack) -> None:
    tenant = new_tenant(stack)
    key = issue(stack, tenant)["apiKey"]
    body = {"refCode": f"ref-{uuid.uuid4().hex[:8]}", "busy": True, "delayMinutes": 5}
    first = call(stack, tenant, "PATCH", "/api/v1/outlets/A-1/busy", key, body)
    second = call(stack, tenant, "PATCH", "/api/v1/outlets/A-1/busy", key, body)
    other_path = call(stack, tenant, "PATCH", "/api/v1/outlets/B-2/busy", key, body)
    assert first[0] == second[0] == other_path[0] == 202
    assert first[1] == second[1] and other_path[1]["rawId"] != first[1]["rawId"]
    conflict = call(stack, tenant, "PATCH", "/api/v1/outlets/A-1/busy", key, {**body, "delayMinutes": 6})
    assert conflict[0] == 409


def test_openapi_docs_and_admin_api(stack: Stack) -> None:
    tenant = new_tenant(stack)
    status, doc, _ = call(stack, tenant, "GET", "/openapi.json", None)
    assert status == 200 and doc["openapi"] == "3.1.0" and "/api/v1/products/sync" in doc["paths"]
    port = stack.receiver.rsplit(":", 1)[1]
    assert doc["servers"] == [{"url": f"http://{tenant}.localhost:{port}"}]
    import urllib.request

    with urllib.request.urlopen(f"{stack.receiver}/docs", timeout=10) as resp:
        html = resp.read().decode()
    assert resp.headers["Content-Type"].startswith("text/html") and "/openapi.json" in html
    assert "https://" not in html.split("<body", 1)[0]  # no CDN assets

    admin = {"Authorization": "Bearer test-admin-token"}
    status, body, _ = call(stack, tenant, "POST", f"/admin/v1/tenants/{tenant}/keys", None, {"name": "jamezz"},
                           {"Authorization": "Bearer wrong"})
    assert status == 401
    status, issued, _ = call(stack, tenant, "POST", f"/admin/v1/tenants/{tenant}/keys", None,
                             {"name": "jamezz", "expiresInSeconds": 3600}, admin)
    assert status == 201 and issued["apiKey"].startswith(f"pk_{issued['apiKeyId']}_"), issued
    assert call(stack, tenant, "GET", "/api/v1/auth/whoami", issued["apiKey"])[0] == 200
    status, listed, _ = call(stack, tenant, "GET", f"/admin/v1/tenants/{tenant}/keys", None, None, admin)
    assert status == 200 and [k["name"] for k in listed["keys"]] == ["jamezz"]
    assert "apiKey" not in listed["keys"][0]  # shown once, at issue
    status, _, _ = call(stack, tenant, "DELETE", f"/admin/v1/keys/{issued['apiKeyId']}", None, None, admin)
    assert status == 200
    assert call(stack, tenant, "GET", "/api/v1/auth/whoami", issued["apiKey"])[0] == 401
    assert call(stack, tenant, "DELETE", f"/admin/v1/keys/{issued['apiKeyId']}", None, None, admin)[0] == 404
    actions = [r["action"] for r in stack.query(
        "SELECT action FROM audit_log WHERE tenant_id = $1 AND actor = 'admin-api' ORDER BY audit_id", tenant)]
    assert actions == ["apikey.issue", "apikey.revoke"]


def test_per_key_rate_limit_is_429_with_retry_after(stack: Stack) -> None:
    tenant = new_tenant(stack)
    key = issue(stack, tenant, "--rate-limit", "2")["apiKey"]
    statuses = [call(stack, tenant, "GET", "/api/v1/auth/whoami", key) for _ in range(6)]
    limited = [s for s in statuses if s[0] == 429]
    assert limited, [s[0] for s in statuses]
    status, body, headers = limited[0]
    assert body["error"]["code"] == 429 and int(headers["Retry-After"]) >= 1
