"""Signed webhooks through the running stack to the Redis views and the read API, then a rebuild."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.helpers import case_body, post, signed
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e
WMS_PATH = "/v1/integrations/erp/inhouse-wms/webhooks/stock"
SECRET = "whsec_dGVzdC1zZWNyZXQ="


def wms(case: str, **data: Any) -> bytes:
    """A recorded in-house WMS event with a fresh event id and ``data`` fields replaced (None removes).

    The facility ``sequence`` is dropped: these are independent events, not a numbered stream.
    """
    body = json.loads(case_body("inhouse-wms", case))
    body["event_id"] = f"evt_{uuid.uuid4().hex}"
    body.pop("sequence", None)
    for k, v in data.items():
        if v is None:
            body["data"].pop(k, None)
        else:
            body["data"][k] = v
    return json.dumps(body).encode()


def send(stack: Stack, tenant: str, body: bytes) -> str:
    status, payload, _ = post(stack.receiver, tenant, WMS_PATH, body,
                              signed("inhouse-wms", body, secret=SECRET, msg_id=json.loads(body)["event_id"]))
    assert status == 202, payload
    return str(payload["rawId"])


def get(stack: Stack, tenant: str, path: str) -> tuple[int, dict[str, Any]]:
    port = stack.views.rsplit(":", 1)[1]
    req = urllib.request.Request(f"{stack.views}{path}", headers={"Host": f"{tenant}.localhost:{port}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def until(fetch: Callable[[], tuple[int, dict[str, Any]]], check: Callable[[dict[str, Any]], bool],
          what: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        last = fetch()
        if last[0] == 200 and check(last[1]):
            return last[1]
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: last {last}")


def milk(doc: dict[str, Any]) -> dict[str, Any] | None:
    return next((i for i in doc["items"] if i["itemId"] == "item-milk"), None)


def test_signed_wms_webhooks_reach_the_redis_views_and_the_read_api_and_survive_a_rebuild(
        stack: Stack, tmp_path: Path) -> None:
    tenant = new_tenant(stack)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", SECRET)
    mapping = tmp_path / "map.csv"
    mapping.write_text("entity,external_id,canonical_id\nmerchant,merchant_qcomm_in,merchant-1\n"
                       "store,DS-BLR-KOR-01,store-kor\nitem,AMUL-TAAZA-500,item-milk\n")
    stack.cli("mappings", "import", tenant, "inhouse-wms", str(mapping))
    availability = "/v1/views/stores/store-kor/availability"

    # absolute (quantity_after) first; the view must hold it before the delta goes out, because the
    # webhooks are separate payloads and only one entity's events are ordered
    send(stack, tenant, wms("stock.adjusted", quantity_after="42"))
    until(lambda: get(stack, tenant, availability), lambda d: (milk(d) or {}).get("quantity") == "42", "42")
    send(stack, tenant, wms("stock.adjusted", quantity_after=None, quantity_delta="-2"))
    send(stack, tenant, wms("item.upserted"))
    send(stack, tenant, wms("facility.status"))

    doc = until(lambda: get(stack, tenant, availability), lambda d: (milk(d) or {}).get("quantity") == "40",
                "the delta")
    item = milk(doc)
    assert item is not None and doc["tenantId"] == tenant and doc["storeId"] == "store-kor"
    assert (item["available"], item["unit"], item["reason"], item["externalItemId"]) == \
        (True, "each", "adjustment", "AMUL-TAAZA-500")
    assert item["updatedAt"] == "2026-01-14T10:04:12Z"

    status = until(lambda: get(stack, tenant, "/v1/views/stores/store-kor/status"), lambda d: True, "status")
    assert (status["status"], status["until"], status["externalStoreId"]) == \
        ("CLOSED", "2026-01-15T00:30:00Z", "DS-BLR-KOR-01")

    product = until(lambda: get(stack, tenant, "/v1/views/items/item-milk"),
                    lambda d: d["catalog"] is not None and len(d["prices"]) == 2, "catalog and prices")
    assert (product["catalog"]["name"], product["catalog"]["brand"]) == ("Amul Taaza Toned Milk 500 ml", "Amul")
    assert sorted((p["priceType"], p["currency"], p["amountMinor"], p["storeId"]) for p in product["prices"]) == \
        [("base", "INR", 2800, "store-kor"), ("sale", "INR", 2700, "store-kor")]
    assert [(a["storeId"], a["quantity"]) for a in product["availability"]] == [("store-kor", "40")]

    # the same data is in Redis under the stack's own prefix
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    base = f"pos-ingest:views:{stack.prefix}"
    epoch = int(client.get(f"{base}epoch") or 0)
    stored = json.loads(client.hget(f"{base}{epoch}:{tenant}:avail:store-kor", "item-milk"))
    assert stored["quantity"] == "40" and stored["_o"]

    # errors use the envelope; an unknown tenant is a 404
    assert get(stack, "nosuchtenant", availability) == \
        (404, {"error": {"code": 404, "message": "unknown tenant", "details": "tenant 'nosuchtenant' does not exist"}})
    code, body = get(stack, tenant, "/v1/views/items/no-such-item")
    assert code == 404 and body["error"]["code"] == 404
    code, body = get(stack, tenant, "/v1/views/stores/no-such-store/status")
    assert code == 404 and body["error"]["message"] == "unknown store"

    # rebuild: a new generation, re-read from the topics; the delta is applied once, not twice
    rebuilt = json.loads(stack.cli("views", "rebuild").stdout)
    assert rebuilt["epoch"] == epoch + 1 and rebuilt["keyPrefix"] == base
    assert not list(client.scan_iter(match=f"{base}{epoch}:*"))
    until(lambda: get(stack, tenant, availability), lambda d: (milk(d) or {}).get("quantity") == "40",
          "the rebuilt view (42 then -2, once)")
    until(lambda: get(stack, tenant, "/v1/views/items/item-milk"),
          lambda d: d["catalog"] is not None and len(d["prices"]) == 2, "the rebuilt item")
    client.close()

    for probe in ("/healthz", "/readyz"):
        with urllib.request.urlopen(f"{stack.views}{probe}", timeout=10) as resp:
            assert resp.status == 200
    with urllib.request.urlopen(f"{stack.views}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    applied = [line for line in metrics.splitlines()
               if line.startswith("pos_ingest_views_applied_total{") and 'topic="inventory.events"' in line]
    assert applied and float(applied[0].rsplit(" ", 1)[1]) >= 4  # 2 before the rebuild, 2 after
