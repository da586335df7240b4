"""Signed requests to the running receiver."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
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
