"""PetPooja ``get_store_status`` answered from the views: a store switched off by ``update_store_status`` is
reported "0" once the views hold it, and the answer never depends on Redis answering."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingest.adapters.petpooja.adapter import PetPoojaAdapter
from ingest.settings import ReceiverSettings
from services.receiver.app import RECEIVER, create_app
from services.views.store import ViewReader
from tests.e2e.helpers import post, signed
from tests.stack import Stack, new_tenant

PATH = "/v1/integrations/pos/petpooja/webhooks/store-status"


def _send(base: str, tenant: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode()
    status, payload, _ = post(base, tenant, PATH, raw, signed("petpooja", raw))
    return status, payload


def _view(stack: Stack, tenant: str, store_id: str) -> dict[str, Any] | None:
    port = stack.views.rsplit(":", 1)[1]
    req = urllib.request.Request(f"{stack.views}/v1/views/stores/{store_id}/status",
                                 headers={"Host": f"{tenant}.localhost:{port}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _wait_view(stack: Stack, tenant: str, store_id: str, status: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        doc = _view(stack, tenant, store_id)
        if doc and doc["status"] == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"view of {store_id} never became {status}: {doc}")


@pytest.mark.e2e
def test_get_store_status_answers_what_the_views_hold(stack: Stack) -> None:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "petpooja", "--secret", "test-secret")
    rest = f"r{uuid.uuid4().hex[:8]}"

    status, reply = _send(stack.receiver, tenant, {"restID": rest})  # nothing known yet
    assert status == 200, reply
    assert reply["store_status"] == "1" and "not known" in reply["message"]
    assert (reply["http_code"], reply["status"]) == (200, "success")

    status, reply = _send(stack.receiver, tenant, {"restID": rest, "store_status": 0, "reason": "Kitchen closed"})
    assert status == 200 and reply["status"] == "success", reply
    [row] = stack.wait_for("SELECT canonical_id FROM mappings WHERE tenant_id = $1 AND provider = 'petpooja' AND "
                           "entity = 'store' AND external_id = $2", tenant, rest)
    _wait_view(stack, tenant, row["canonical_id"], "PAUSED")
    status, reply = _send(stack.receiver, tenant, {"restID": rest})
    assert (status, reply["store_status"], reply["message"]) == (200, "0", "Store status fetched successfully")

    _send(stack.receiver, tenant, {"restID": rest, "store_status": 1, "reason": ""})
    _wait_view(stack, tenant, row["canonical_id"], "OPEN")
    status, reply = _send(stack.receiver, tenant, {"restID": rest})
    assert (status, reply["store_status"]) == (200, "1")

    # the query itself is stored like every webhook (and acked by the pipeline as unsupported)
    assert stack.query("SELECT count(*) AS n FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["n"] == 5


@pytest.mark.e2e
def test_redis_down_answers_the_last_known_status_or_on_never_a_5xx(stack: Stack) -> None:
    """The stack's database and object storage, a receiver in process whose Redis then goes away."""
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "petpooja", "--secret", "test-secret")
    seen, unseen = f"r{uuid.uuid4().hex[:8]}", f"r{uuid.uuid4().hex[:8]}"
    for rest in (seen, unseen):
        _send(stack.receiver, tenant, {"restID": rest, "store_status": 0, "reason": "x"})
    rows = stack.wait_for("SELECT external_id, canonical_id FROM mappings WHERE tenant_id = $1 AND entity = 'store'",
                          tenant, check=lambda rs: len(rs) == 2)
    for row in rows:
        _wait_view(stack, tenant, row["canonical_id"], "PAUSED")

    env = {k.lower(): v for k, v in stack.env.items() if k in (
        "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "S3_ENDPOINT_URL", "S3_BUCKET", "TOPIC_PREFIX", "REDIS_URL")}
    asyncio.run(_in_process_receiver(ReceiverSettings(**env), tenant, seen, unseen))


async def _in_process_receiver(settings: ReceiverSettings, tenant: str, seen: str, unseen: str) -> None:
    client = TestClient(TestServer(await create_app(settings)))
    await client.start_server()

    async def ask(restaurant: str) -> tuple[int, dict[str, Any]]:
        raw = json.dumps({"restID": restaurant}).encode()
        resp = await client.post(PATH, data=raw, headers={"Host": f"{tenant}.localhost", **signed("petpooja", raw),
                                                          "Content-Type": "application/json"})
        return resp.status, await resp.json()

    try:
        assert (await ask(seen))[1]["store_status"] == "0"  # read through Redis: now known to this process
        lookup = client.server.app[RECEIVER].store_status
        await lookup.reader.close()
        lookup.reader = ViewReader.from_url("redis://127.0.0.1:1/0", lookup.reader.base)  # Redis is gone
        started = time.monotonic()
        status, reply = await ask(seen)
        assert (status, reply["store_status"]) == (200, "0") and "last known" in reply["message"], reply
        status, reply = await ask(unseen)  # mapped and in the views, but never read by this process
        assert (status, reply["store_status"]) == (200, "1") and "not known" in reply["message"], reply
        assert time.monotonic() - started < 5  # bounded by STORE_STATUS_TIMEOUT_S, not Redis's socket timeouts
    finally:
        await client.close()


def test_the_adapter_maps_canonical_statuses_to_on_and_off() -> None:
    adapter = PetPoojaAdapter()
    assert adapter.store_status_query("store-status", b'{"restID": "ps82kz7f"}') == "ps82kz7f"
    assert adapter.store_status_query("store-status", b'{"restID": "ps82kz7f", "store_status": 0}') is None
    assert adapter.store_status_query("store-status", b"not json") is None
    flags = {s: adapter.status_reply(s).body["store_status"] for s in ("OPEN", "BUSY", "CLOSED", "PAUSED", None)}
    assert flags == {"OPEN": "1", "BUSY": "1", "CLOSED": "0", "PAUSED": "0", None: "1"}
    assert adapter.status_reply("CLOSED", stale=True).body == {
        "http_code": 200, "status": "success", "store_status": "0",
        "message": "Store status unavailable just now; last known status reported"}
