"""Hostile input through the running receiver: each a clear 4xx envelope, and nothing stored half-way."""
from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.helpers import NothingStored
from tests.security.test_webhook_auth import SCHEMES
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e
WMS = SCHEMES[0]
SQL = ["' OR '1'='1", "1; DROP TABLE raw_payloads; --", "x\" OR \"\"=\"", "%27%3B--", "$1::text", "\\'; SELECT pg_sleep(5); --"]


def request(stack: Stack, tenant: str, method: str, path: str, body: bytes | Iterator[bytes] | None = None,
            headers: dict[str, str] | None = None, *, host_header: str | None = None
            ) -> tuple[int, Any, dict[str, str]]:
    """Exactly this path (and ``Host``, when given) on the wire (no client-side normalisation or quoting)."""
    host, port = stack.receiver.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host_header if host_header is not None else f"{tenant}.localhost:{port}")
        chunked = body is not None and not isinstance(body, bytes)
        merged = {"Content-Type": "application/json", **(headers or {})}
        if isinstance(body, bytes):
            merged["Content-Length"] = str(len(body))
        elif chunked:
            merged["Transfer-Encoding"] = "chunked"
        for k, v in merged.items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            if isinstance(body, bytes):
                conn.send(body)
            elif chunked:
                assert body is not None
                for chunk in body:
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: read that answer
        resp = conn.getresponse()
        raw = resp.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = {"_raw": raw[:200]}
        return resp.status, payload, dict(resp.getheaders())
    finally:
        conn.close()


def assert_envelope(result: tuple[int, Any, dict[str, str]], *statuses: int) -> None:
    status, payload, headers = result
    assert status in statuses, (status, payload)
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    error = payload["error"]
    assert error["code"] == status and isinstance(error["message"], str) and error["details"], payload


@pytest.fixture(scope="module")
def setup(stack: Stack) -> tuple[str, str]:
    tenant = new_tenant(stack)
    stack.cli("sources", "add", tenant, WMS.provider, "--secret", WMS.secrets[0])
    key = json.loads(stack.cli("keys", "issue", tenant, "--rate-limit", "1000").stdout.splitlines()[0])["apiKey"]
    return tenant, key


def signed(body: bytes) -> dict[str, str]:
    return WMS.headers(WMS.secrets[0], body, timestamp=int(time.time()))


def test_non_utf8_bodies(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    body = b'{"event_id": "evt_\xff\xfe", "type": "stock.adjusted"}'
    with NothingStored(stack):
        assert_envelope(request(stack, tenant, "POST", WMS.path, body, signed(body)), 400)
        assert_envelope(request(stack, tenant, "PATCH", "/api/v1/outlets/A-1/busy", b'{"busy": \xff}',
                                {"X-Api-Key": key}), 400)


def test_bodies_over_10_mb(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    big = b'{"pad": "' + b"a" * (10 * 1024 * 1024 + 16) + b'"}'
    with NothingStored(stack):
        assert_envelope(request(stack, tenant, "POST", WMS.path, big, signed(big)), 413)
        assert_envelope(request(stack, tenant, "POST", "/api/v1/products/sync", big, {"X-Api-Key": key}), 413)
        # no Content-Length: the limit holds while reading
        chunks = iter([big[i:i + 1024 * 1024] for i in range(0, len(big), 1024 * 1024)])
        assert_envelope(request(stack, tenant, "POST", WMS.path, chunks, signed(big)), 413)


def test_json_nested_1000_deep(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    deep = b'{"event_id": "evt_deep", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with NothingStored(stack):
        assert_envelope(request(stack, tenant, "POST", WMS.path, deep, signed(deep)), 400)
        assert_envelope(request(stack, tenant, "POST", "/api/v1/outlets/sync", deep, {"X-Api-Key": key}), 400)
        objects = b'{"outlets": ' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}"
        assert_envelope(request(stack, tenant, "POST", "/api/v1/outlets/sync", objects, {"X-Api-Key": key}), 400)


def test_64_kb_headers(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    body = WMS.body
    junk = {"X-Junk": "j" * 64 * 1024}
    with NothingStored(stack):
        assert_envelope(request(stack, tenant, "POST", WMS.path, body, {**signed(body), **junk}), 431)
        assert_envelope(request(stack, tenant, "GET", "/api/v1/auth/whoami", None, {"X-Api-Key": key, **junk}), 431)
        many = {f"X-Many-{i}": "m" * 1000 for i in range(40)}  # each small, 40 KB together
        assert_envelope(request(stack, tenant, "POST", WMS.path, body, {**signed(body), **many}), 431)


@pytest.mark.parametrize("path", [
    "/v1/integrations/pos/..%2F..%2Fetc/webhooks/menu",
    "/v1/integrations/pos/..%2f..%2fetc%2fpasswd/webhooks/menu",
    "/v1/integrations/pos/%2e%2e/webhooks/menu",
    "/v1/integrations/pos/deliverect/webhooks/..%2F..%2Fetc%2Fpasswd",
    "/v1/integrations/pos/deliverect%00/webhooks/menu",
    "/api/v1/outlets/..%2F..%2Fadmin/busy",
])
def test_path_traversal(stack: Stack, setup: tuple[str, str], path: str) -> None:
    tenant, key = setup
    body = b'{"busy": false}'
    with NothingStored(stack):
        method = "PATCH" if path.startswith("/api/") else "POST"
        assert_envelope(request(stack, tenant, method, path, body, {**signed(body), "X-Api-Key": key}), 400, 404)


def test_sql_metacharacters_in_every_path_segment_and_query_parameter(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    q = urllib.parse.quote
    body = WMS.body
    with NothingStored(stack):
        for evil in SQL:
            e = q(evil, safe="")
            query = f"?tenant={e}&id={e}&{e}={e}"
            cases = [
                ("POST", f"/v1/integrations/erp/{e}/webhooks/stock", (404,)),
                ("POST", f"/v1/integrations/{e}/inhouse-wms/webhooks/stock", (404,)),
                ("POST", f"/v1/integrations/erp/inhouse-wms/webhooks/{e}", (404,)),
                ("POST", f"/v1/integrations/erp/inhouse-wms/{e}", (404,)),
                ("PATCH", f"/api/v1/outlets/{e}/busy", (404,)),
                ("PATCH", f"/api/v1/orders/{e}/status", (404,)),
                ("GET", f"/api/v1/operations/{e}", (404,)),
                ("GET", f"/admin/v1/tenants/{e}/keys", (401, 404)),
                ("DELETE", f"/admin/v1/keys/{e}", (401, 404)),
            ]
            for method, path, statuses in cases:
                for suffix in ("", query):
                    headers = {**signed(body), "X-Api-Key": key, "Authorization": "Bearer test-admin-token"}
                    assert_envelope(request(stack, tenant, method, path + suffix, body, headers), *statuses)
            # query parameters change nothing on routes that exist: still authenticated the same way
            assert request(stack, tenant, "GET", "/api/v1/auth/whoami" + query, None, {"X-Api-Key": key})[0] == 200
            assert_envelope(request(stack, tenant, "GET", "/api/v1/auth/whoami" + query, None,
                                    {"X-Api-Key": evil.encode("ascii", "replace").decode()}), 401)
            assert_envelope(request(stack, tenant, "POST", WMS.path + query, body, {"webhook-id": evil}), 401)
            # a tenant label with metacharacters (the host) is simply an unknown tenant
            assert_envelope(request(stack, f"x{e.replace('%', '')}", "GET", "/api/v1/auth/whoami", None,
                                    {"X-Api-Key": key}), 404)
    assert stack.query("SELECT count(*) AS n FROM api_keys WHERE tenant_id = $1", tenant)[0]["n"] == 1


def test_methods_trailing_slashes_and_unknown_paths(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    with NothingStored(stack):
        # a webhook route exists for POST only: any other method is a 405 naming POST, not a 404
        for method in ("GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"):
            status, payload, headers = request(stack, tenant, method, WMS.path)
            assert (status, headers.get("Allow")) == (405, "POST"), (method, status, payload, headers)
            if method != "HEAD":
                assert_envelope((status, payload, headers), 405)
            # an unknown tenant is a 404 whatever the method
            result = request(stack, "nosuchtenant", method, WMS.path)
            assert result[0] == 404 and (method == "HEAD" or result[1]["error"]["message"] == "unknown tenant")
        # routes that do not exist stay 404 whatever the method
        for method in ("GET", "PUT", "POST"):
            for path in ("/v1/integrations/erp/inhouse-wms/webhooks/menu", "/v1/integrations/erp/nosuch/webhooks/stock",
                         "/v1/integrations/nokind/inhouse-wms/webhooks/stock"):
                assert_envelope(request(stack, tenant, method, path, b"{}"), 404)
        # an unknown path says so, like every other 404 of the receiver
        for method, path in (("GET", "/nowhere"), ("POST", "/v1/integrations/erp/inhouse-wms"),
                             ("GET", "/api/v1/nosuch")):
            result = request(stack, tenant, method, path, None, {"X-Api-Key": key})
            assert_envelope(result, 404)
            assert result[1]["error"]["message"] == "unknown route", result
        result = request(stack, tenant, "POST", "/api/v1/auth/whoami", b"{}", {"X-Api-Key": key})
        assert_envelope(result, 405)
        assert result[2].get("Allow") == "GET,HEAD" and "GET" in result[1]["error"]["details"], result
    # a vendor that was given (or pasted) the URL with a trailing slash reaches the same route
    body = WMS.body
    status, payload, _ = request(stack, tenant, "POST", WMS.path + "/", body, signed(body))
    assert status == 202 and set(payload) == {"rawId", "status"}, payload

def test_host_forms_that_name_the_tenant(stack: Stack, setup: tuple[str, str]) -> None:
    tenant, key = setup
    port = stack.receiver.rsplit(":", 1)[1]
    for host in (f"{tenant}.localhost:{port}", f"{tenant.upper()}.LOCALHOST:{port}", f"{tenant}.localhost",
                 f"{tenant}.localhost.:{port}", f"{tenant}.localhost."):  # an absolute name (trailing dot) too
        status, payload, _ = request(stack, tenant, "GET", "/api/v1/auth/whoami", None, {"X-Api-Key": key},
                                     host_header=host)
        assert (status, payload.get("tenantId")) == (200, tenant), (host, status, payload)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"x.{tenant}.localhost:{port}",
                 f"{tenant}.localhost.evil.example:{port}", f"{tenant}.localhost..:{port}", ""):
        result = request(stack, tenant, "GET", "/api/v1/auth/whoami", None, {"X-Api-Key": key}, host_header=host)
        assert_envelope(result, 404)
        assert result[1]["error"]["message"] == "unknown tenant", (host, result)
