"""Calls to the running support service, and mapping failures made on purpose through the receiver."""
from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from tests.e2e.helpers import case_body, post, signed
from tests.stack import Stack, new_tenant

TOKEN = "test-admin-token"
WMS_PATH = "/v1/integrations/erp/inhouse-wms/webhooks/stock"
SECRET = "whsec_dGVzdC1zZWNyZXQ="
_SEQUENCE = itertools.count(int(time.time() * 1000))


def api(stack: Stack, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
        raw: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(stack.support + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload = resp.read()
            ctype = resp.headers.get("Content-Type", "")
            return resp.status, json.loads(payload) if "json" in ctype else payload
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        return exc.code, json.loads(payload) if payload[:1] == b"{" else payload


def wms_event(sku: str, after: str = "7", facility: str | None = None) -> bytes:
    body = json.loads(case_body("inhouse-wms", "stock.adjusted"))
    body["event_id"] = f"evt_{uuid.uuid4().hex}"
    body["data"]["sku"] = sku
    body["data"]["quantity_after"] = after
    body["data"]["adjustment_id"] = f"ADJ-{uuid.uuid4().hex[:10]}"
    body["sequence"] = next(_SEQUENCE)  # the WMS numbers events per facility; a repeat is refused as stale
    if facility:
        body["facility_id"] = facility
    return json.dumps(body).encode()


def send(stack: Stack, tenant: str, body: bytes) -> str:
    event_id = json.loads(body)["event_id"]
    status, payload, _ = post(stack.receiver, tenant, WMS_PATH, body,
                              signed("inhouse-wms", body, secret=SECRET, msg_id=event_id))
    assert status == 202, payload
    return str(payload["rawId"])


def tenant_with_partial_mappings(stack: Stack, tmp_path: Any, *, item_mapped: bool = False) -> str:
    """A tenant that maps the merchant and the store but not the items: every stock event is a mapping failure."""
    tenant = new_tenant(stack)
    stack.cli("sources", "add", tenant, "inhouse-wms", "--secret", SECRET)
    mapping = tmp_path / f"{tenant}.csv"
    mapping.write_text("entity,external_id,canonical_id\nmerchant,merchant_qcomm_in,merchant-1\n"
                       "store,DS-BLR-KOR-01,store-kor\n")
    stack.cli("mappings", "import", tenant, "inhouse-wms", str(mapping))
    return tenant
