"""Uploading feeds to the running receiver (streamed, chunked) and waiting for their imports."""
from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from tests.stack import Stack

PATH = "/v1/integrations/seller/{provider}/import"
SECRET = "feed-upload-token"


def upload(stack: Stack, tenant: str, body: bytes | Iterable[bytes], *, content_type: str = "text/csv",
           provider: str = "google-merchant", query: str = "", token: str | None = SECRET,
           headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST a feed; an iterable body goes out with chunked transfer encoding (never joined in memory)."""
    url = urlsplit(stack.receiver)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    sent = {"Host": f"{tenant}.localhost:{url.port}", "Content-Type": content_type, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    path = PATH.format(provider=provider) + (f"?{query}" if query else "")
    try:
        if isinstance(body, bytes):
            conn.request("POST", path, body=body, headers=sent)
        else:
            conn.request("POST", path, body=iter(body), headers=sent, encode_chunked=True)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {})
    finally:
        conn.close()


def wait_import(stack: Stack, raw_id: str, *, state: str = "done", timeout: float = 60.0) -> dict[str, Any]:
    """The import's progress (via the CLI, as an operator sees it) once it reaches ``state``."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = stack.cli("imports", "show", raw_id, check=False)
        if result.returncode == 0:
            last = json.loads(result.stdout)
            if last["state"] == state:
                return last
        time.sleep(0.3)
    raise AssertionError(f"import {raw_id} did not reach {state}: {last}")


def commands_of(stack: Stack, raw_id: str, count: int, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The import's commands on ``catalog.commands`` once ``count`` of them are there (or the timeout)."""
    records = stack.consume("catalog.commands",
                            until=lambda rs: len([r for r in rs if r["rawId"] == raw_id]) >= count, timeout=timeout)
    return [r for r in records if r["rawId"] == raw_id]
