"""The pipeline end to end over HTTP, through the real broker, PostgreSQL and S3 server."""
from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import WMS_PATH, case_body, post, send_wms, signed, wms_adjusted
from tests.e2e.helpers import WMS_SECRET as SECRET
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e


def _wms_event(sku: str, after: str) -> bytes:
    return wms_adjusted(sku, after, sequence=18240)  # the recorded sample's sequence number


def _send(stack: Stack, tenant: str, body: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    return send_wms(stack.receiver, tenant, body)


def test_signed_wms_webhook_becomes_stock_event_and_raw_is_byte_exact(stack: Stack) -> None:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", SECRET)
    body = case_body("inhouse-wms", "stock.adjusted")  # the recorded bytes, exactly
    status, payload = _send(stack, tenant, body)
    assert status == 202, payload
    raw_id = payload["rawId"]
    assert payload["status"] == "accepted"

    events = stack.consume("inventory.events", until=lambda rs: any(r["rawId"] == raw_id for r in rs))
    mine = [e for e in events if e["rawId"] == raw_id]
    assert len(mine) == 1
    event = mine[0]
    assert event["_schema"] == "StockLevelUpdated" and event["eventType"] == "StockLevelUpdated"
    assert (event["commandType"], event["mode"], event["quantity"], event["reason"]) == \
        ("UpdateStockLevel", "absolute", "42", "adjustment")
    assert event["tenantId"] == tenant and event["provider"] == "inhouse-wms"
    assert event["_key"] == f"{tenant}:{event['storeId']}:{event['itemId']}"
    assert event["_headers"]["raw-id"] == raw_id

    shown = stack.cli("raw", "show", raw_id, "--body-only")
    assert shown.stdout.encode() == body
    meta = json.loads(stack.cli("raw", "show", raw_id).stdout.splitlines()[0])
    headers = {k.lower(): v for k, v in meta["headers"].items()}
    assert headers["webhook-signature"] == "[redacted]"
    assert headers["webhook-id"] == json.loads(body)["event_id"]

    # the same webhook again: a duplicate failure, not a second command
    status, again = _send(stack, tenant, body)
    assert status == 202
    rows = stack.wait_for("SELECT class, reason_code, details FROM failures WHERE raw_id = $1::uuid",
                          again["rawId"])
    assert rows[0]["class"] == "duplicate"
    assert raw_id in rows[0]["details"]
    commands = stack.consume("catalog.commands", until=lambda rs: False, timeout=3)
    assert [c["rawId"] for c in commands].count(again["rawId"]) == 0


def test_bad_signature_is_401_and_an_auth_failure_without_the_body(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", SECRET)
    body = _wms_event("SKU-1", "5")
    headers = signed("inhouse-wms", body, secret="whsec_d3Jvbmctc2VjcmV0", msg_id="evt_x")
    status, payload, _ = post(stack.receiver, tenant, WMS_PATH, body, headers)
    assert status == 401
    assert payload == {"error": {"code": 401, "message": "unauthorized",
                                 "details": "signature or credentials did not verify"}}
    rows = stack.wait_for("SELECT * FROM failures WHERE tenant_id = $1 AND class = 'auth'", tenant)
    assert rows[0]["stage"] == "receiver" and rows[0]["raw_id"] is None
    assert body.decode() not in json.dumps(rows[0], default=str)
    assert stack.query("SELECT count(*) AS n FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["n"] == 0


def test_unmapped_store_fails_then_mapping_import_and_replay_deliver(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = new_tenant(stack, auto_create=False)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", SECRET)
    body = _wms_event("AMUL-TAAZA-500", "17")
    status, payload = _send(stack, tenant, body)
    assert status == 202
    raw_id = payload["rawId"]
    rows = stack.wait_for("SELECT class, reason_code, stage, message FROM failures WHERE raw_id = $1::uuid", raw_id)
    assert (rows[0]["class"], rows[0]["stage"], rows[0]["reason_code"]) == ("mapping", "mapper", "unmapped_reference")
    assert "store:DS-BLR-KOR-01" in rows[0]["message"]
    listed = stack.cli("failures", "list", "--class", "mapping", "--tenant", tenant, "--json").stdout
    assert raw_id in listed

    mapping = tmp_path / "map.csv"
    mapping.write_text("entity,external_id,canonical_id\nmerchant,merchant_qcomm_in,merchant-1\n"
                       "store,DS-BLR-KOR-01,store-kor\nitem,AMUL-TAAZA-500,item-milk\n")
    stack.cli("mappings", "import", tenant, "inhouse-wms", str(mapping))
    replayed = json.loads(stack.cli("replay", raw_id).stdout)
    assert replayed["replayed"] == 1

    events = stack.consume("inventory.events", until=lambda rs: any(r["rawId"] == raw_id for r in rs))
    event = next(e for e in events if e["rawId"] == raw_id)
    assert (event["storeId"], event["itemId"], event["merchantId"], event["quantity"]) == \
        ("store-kor", "item-milk", "merchant-1", "17")
    assert event["_key"] == f"{tenant}:store-kor:item-milk"


def test_receiver_errors_use_the_envelope(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", SECRET)
    assert post(stack.receiver, "nosuchtenant", WMS_PATH, b"{}")[0] == 404
    status, payload, _ = post(stack.receiver, tenant, "/v1/integrations/erp/nosuch/webhooks/stock", b"{}")
    assert status == 404 and payload["error"]["code"] == 404
    status, payload, _ = post(stack.receiver, tenant, "/v1/integrations/pos/inhouse-wms/webhooks/menu", b"{}")
    assert status == 404
    status, payload, _ = post(stack.receiver, tenant, WMS_PATH, b"x", {"Content-Type": "image/png"})
    assert status == 415 and payload["error"]["message"] == "unsupported media type"
    big = b"{" + b" " * (11 * 1024 * 1024) + b"}"
    status, payload, _ = post(stack.receiver, tenant, WMS_PATH, big)
    assert status == 413 and payload["error"]["code"] == 413
