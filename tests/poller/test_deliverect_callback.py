"""Deliverect async menus through a running stack: the poller reports ONLINE or FAILED to the push's callback,
once, to an allowed host only (a local aiohttp server plays Deliverect)."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from services.poller.callbacks import Verdict, after_post, host_allowed, merge, parse_hosts, verdict_of
from tests.e2e.helpers import case_body, post, signed
from tests.stack import Deps, Stack, new_tenant, start_stack

MENU_PATH = "/v1/integrations/pos/deliverect/webhooks/menu"
PIPELINE = ["receiver", "dedupe", "mapper", "transformer", "validator", "command-writer", "failure-recorder",
            "poller"]


class Deliverect:
    """Records every callback; answers 503 to the first call on a path listed in ``flaky``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.flaky: set[str] = set()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.path, await request.json()))
        if request.path in self.flaky:
            self.flaky.discard(request.path)
            return web.json_response({"error": "try again"}, status=503)
        return web.json_response({"ok": True})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> Deliverect:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def on(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.calls if p == path]


@pytest.fixture(scope="module")
def deliverect() -> Iterator[Deliverect]:
    server = Deliverect().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cb_stack(deps: Deps, work_dir: Path) -> Iterator[Stack]:
    """The pipeline and the poller, with loopback allowed as a callback host (only here)."""
    yield from start_stack(deps, work_dir, services=PIPELINE, extra_env={"DELIVERECT_CALLBACK_HOSTS": "127.0.0.1"})


def _async_menu(callback: str) -> bytes:
    menus = json.loads(case_body("deliverect", "menu_update"))
    return json.dumps({"menus": menus, "stores": [menus[0]["channelLinkId"]], "callback": callback}).encode()


def _push(stack: Stack, tenant: str, callback: str) -> str:
    stack.cli("sources", "add", tenant, "deliverect", "--secret", "test-secret")
    body = _async_menu(callback)
    status, payload, _ = post(stack.receiver, tenant, MENU_PATH, body, signed("deliverect", body))
    assert status == 202, payload
    return str(payload["rawId"])


def _row(stack: Stack, raw_id: str, done: bool = True) -> dict[str, Any]:
    [row] = stack.wait_for("SELECT status, result, comment, attempts, last_error, reported_at FROM vendor_callbacks "
                           "WHERE raw_id = $1::uuid", raw_id,
                           check=lambda rs: bool(rs) and (not done or rs[0]["status"] != "pending"))
    return row


def _wait_calls(server: Deliverect, path: str, n: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(server.on(path)) >= n:
            return server.on(path)
        time.sleep(0.1)
    raise AssertionError(f"{path}: {len(server.on(path))} callback(s), wanted {n}")


@pytest.mark.e2e
def test_processed_async_menu_reports_online_once_after_a_503(cb_stack: Stack, deliverect: Deliverect) -> None:
    tenant = new_tenant(cb_stack, auto_create=True)
    path = f"/menuStatus/{uuid.uuid4().hex}"
    deliverect.flaky.add(path)  # the first report meets a 503: retried with backoff
    raw_id = _push(cb_stack, tenant, f"http://127.0.0.1:{deliverect.port}{path}")

    row = _row(cb_stack, raw_id)
    [outcome] = cb_stack.query("SELECT command_ids FROM outcomes WHERE raw_id = $1::uuid", raw_id)
    n = len(outcome["command_ids"])
    assert n > 0
    assert (row["status"], row["result"], row["attempts"]) == ("reported", "ONLINE", 2), row
    assert row["reported_at"] is not None and "503" in row["last_error"]
    calls = _wait_calls(deliverect, path, 2)
    assert calls == [{"status": "ONLINE", "comment": f"{n} commands"}] * 2
    # reported is final: the row is never claimed again, and a later record for the raw id changes nothing
    cb_stack.cli("replay", raw_id)
    cb_stack.wait_for("SELECT 1 FROM outcomes WHERE raw_id = $1::uuid AND replay_key <> ''", raw_id)
    assert _row(cb_stack, raw_id)["attempts"] == 2 and len(deliverect.on(path)) == 2


@pytest.mark.e2e
def test_unmapped_async_menu_reports_failed_with_the_class(cb_stack: Stack, deliverect: Deliverect) -> None:
    tenant = new_tenant(cb_stack, auto_create=False)  # nothing mapped: the mapper fails the whole payload
    path = f"/menuStatus/{uuid.uuid4().hex}"
    raw_id = _push(cb_stack, tenant, f"http://127.0.0.1:{deliverect.port}{path}")

    row = _row(cb_stack, raw_id)
    assert (row["status"], row["result"], row["attempts"]) == ("reported", "FAILED", 1), row
    [call] = _wait_calls(deliverect, path, 1)
    assert call["status"] == "FAILED" and call["comment"].startswith("mapping: no mapping for ")
    assert cb_stack.query("SELECT 1 FROM outcomes WHERE raw_id = $1::uuid AND outcome = 'processed'", raw_id) == []


@pytest.mark.e2e
def test_a_callback_to_a_host_not_allowed_is_refused_and_never_called(cb_stack: Stack) -> None:
    tenant = new_tenant(cb_stack, auto_create=True)
    raw_id = _push(cb_stack, tenant, "http://169.254.169.254/latest/meta-data/iam")
    row = _row(cb_stack, raw_id)
    assert (row["status"], row["attempts"]) == ("refused", 0), row
    assert "DELIVERECT_CALLBACK_HOSTS" in row["last_error"]


def test_host_allowlist_matches_subdomains_and_https_only_except_named_loopback() -> None:
    hosts = parse_hosts("*.deliverect.com, *.deliverect.io,127.0.0.1")
    assert host_allowed("https://api.staging.deliverect.com/chan/menuStatus/1", hosts)
    assert host_allowed("https://api.deliverect.io/x", hosts)
    assert host_allowed("http://127.0.0.1:9999/x", hosts)
    for url in ("http://api.deliverect.com/x",  # plain http to a vendor host
                "https://deliverect.com.evil.test/x", "https://evildeliverect.com/x",
                "https://api.deliverect.com@169.254.169.254/x",  # userinfo trick: the host is the IP
                "https://deliverect.com/x",  # "*.x" is subdomains only
                "http://localhost:9999/x",  # loopback, but not named in the list
                "file:///etc/passwd", "https://api.deliverect.com:bad/x", "not a url"):
        assert not host_allowed(url, hosts), url


def test_verdicts_processed_beats_failed_and_duplicates_say_nothing() -> None:
    failed = {"rawId": "r1", "provider": "deliverect", "class": "validation", "message": "bad", "commandId": "c1"}
    processed = {"rawId": "r1", "provider": "deliverect", "outcome": "processed", "commandIds": ["a", "b"],
                 "duplicateCommandIds": [], "eventType": "menu_update"}
    assert verdict_of("FailureRecord", {**failed, "class": "duplicate"}) is None
    assert verdict_of("PayloadOutcome", {**processed, "outcome": "skipped"}) is None
    assert verdict_of("PayloadOutcome", {**processed, "provider": "petpooja"}) is None
    assert verdict_of("PayloadOutcome", {**processed, "eventType": "snooze"}) is None  # no menu, no S3 read
    one = verdict_of("FailureRecord", failed)
    assert one == Verdict("r1", "FAILED", "validation: bad", wait=True)
    whole = verdict_of("FailureRecord", {**failed, "class": "mapping", "commandId": None})
    assert whole is not None and not whole.wait
    done = verdict_of("PayloadOutcome", processed)
    assert merge([one, done, whole])["r1"] == Verdict("r1", "ONLINE", "2 commands")  # type: ignore[list-item]
    assert merge([one, whole])["r1"] == whole  # type: ignore[list-item]


def test_after_post_retries_5xx_until_the_window_closes() -> None:
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    far, near = now + timedelta(minutes=30), now + timedelta(milliseconds=1)
    kw = {"base_s": 0.5, "max_s": 60.0}
    assert after_post("r", 200, "", 0, None, now, far, **kw).status == "reported"
    assert after_post("r", 404, "HTTP 404", 0, None, now, far, **kw).status == "rejected"
    retry = after_post("r", 503, "HTTP 503", 3, "7", now, far, **kw)
    assert (retry.status, retry.next_at) == ("pending", now + timedelta(seconds=7))
    assert after_post("r", None, "TimeoutError", 0, None, now, far, **kw).status == "pending"
    assert after_post("r", 503, "HTTP 503", 0, "7", now, near, **kw).status == "expired"
