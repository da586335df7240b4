"""Builders for stage inputs: change only the field under test."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any

from ingest.kafka.results import Input
from tests.adapters.cases import load_cases

RECEIVED = datetime(2026, 1, 14, 10, 16, tzinfo=timezone.utc)
_offsets = iter(range(10**9))


def raw_record(provider: str = "inhouse-wms", case: str = "stock.adjusted", *, tenant: str = "acme",
               body: bytes | None = None, **overrides: Any) -> dict[str, Any]:
    if body is None:
        found = next(c for c in load_cases(provider) if c.name == case)
        body = found.body
    record = {"rawId": str(uuid.uuid4()), "tenantId": tenant, "provider": provider, "kind": "erp",
              "family": "stock", "route": "/v1/integrations/erp/inhouse-wms/webhooks/stock", "receivedAt": RECEIVED,
              "contentType": "application/json", "headers": {}, "sha256": hashlib.sha256(body).hexdigest(),
              "size": len(body), "segmentKey": "seg", "segmentOffset": 0, "segmentLength": len(body), "body": body,
              "replayId": None, "attempt": 0}
    record.update(overrides)
    return record


def an_input(record: dict[str, Any], *, schema: str = "RawReceived", topic: str = "integration.raw",
             offset: int | None = None) -> Input:
    return Input(topic, 0, next(_offsets) if offset is None else offset, f"{record['tenantId']}:-:x",
                 {"raw-id": record["rawId"]}, schema, record)
