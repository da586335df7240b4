"""Signed requests to the running receiver."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from ingest.adapters.registry import adapter_class

SAMPLES = Path("/work/shared/reference/samples") if Path("/work/shared/reference/samples").exists() else \
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "samples"
CASES = Path(__file__).resolve().parents[1] / "adapters" / "cases"


def case_body(provider: str, case: str) -> bytes:
    return (CASES / provider / case / "body.raw").read_bytes()


def post(base: str, tenant: str, path: str, body: bytes, headers: dict[str, str] | None = None,
         method: str = "POST") -> tuple[int, dict[str, Any], dict[str, str]]:
    port = base.rsplit(":", 1)[1]
    req = urllib.request.Request(f"{base}{path}", data=body, method=method,
                                 headers={"Host": f"{tenant}.localhost:{port}",
                                          "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {}), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"_raw": raw.decode(errors="replace")}
        return exc.code, payload, dict(exc.headers)


def signed(provider: str, body: bytes, *, secret: str = "test-secret", msg_id: str = "msg_1",
           timestamp: int | None = None) -> dict[str, str]:
    adapter = adapter_class(provider)()
    return adapter.sign(body, secret=secret, timestamp=timestamp or int(time.time()), msg_id=msg_id)


# --- in-house WMS ---------------------------------------------------------------------------------
WMS_PATH = "/v1/integrations/erp/inhouse-wms/webhooks/stock"
WMS_SECRET = "whsec_dGVzdC1zZWNyZXQ="


def wms_adjusted(sku: str, after: str = "42", *, sequence: int | None = None) -> bytes:
    """A fresh stock.adjusted event (its own event id) built on the recorded sample."""
    body = json.loads(case_body("inhouse-wms", "stock.adjusted"))
    body.update(event_id=f"evt_{uuid.uuid4().hex}", sequence=sequence)
    body["data"].update(sku=sku, quantity_after=after)
    return json.dumps(body).encode()


def wms_snapshot(*skus: str, snapshot_id: str = "S1", page: int = 1, page_count: int = 1, mode: str = "full",
                 as_of: str = "2026-01-14T10:15:00Z", available: str = "5") -> bytes:
    """A fresh stock.snapshot page listing ``skus`` (each at ``available``), built on the recorded sample."""
    body = json.loads(case_body("inhouse-wms", "stock.snapshot"))
    body.update(event_id=f"evt_{uuid.uuid4().hex}", sequence=None)
    item = body["data"]["items"][0]
    body["data"] = {"snapshot_id": snapshot_id, "as_of": as_of, "mode": mode, "page": page, "page_count": page_count,
                    "items": [{**item, "sku": sku, "available": available} for sku in skus]}
    return json.dumps(body).encode()


def send_wms(receiver: str, tenant: str, body: bytes, secret: str = WMS_SECRET) -> tuple[int, dict[str, Any]]:
    event_id = json.loads(body)["event_id"]
    status, payload, _ = post(receiver, tenant, WMS_PATH, body, signed("inhouse-wms", body, secret=secret,
                                                                       msg_id=event_id))
    return status, payload
