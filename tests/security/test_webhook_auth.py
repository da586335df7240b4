"""Every webhook auth scheme through the running receiver: valid, tampered, missing, stale, future-dated,
rotated and wrong-tenant; every refusal the same 401 envelope, audited, and nothing stored."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest

from ingest.adapters.registry import adapter_class
from tests.e2e.helpers import CASES, post
from tests.security.helpers import NothingStored, eventually, raw_rows
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e
UNAUTHORIZED = {"error": {"code": 401, "message": "unauthorized", "details": "signature or credentials did not verify"}}


@dataclass(frozen=True)
class Scheme:
    name: str
    provider: str
    case: str
    secrets: tuple[str, str, str]  # the first, then two rotations

    @property
    def adapter(self):  # type: ignore[no-untyped-def]
        return adapter_class(self.provider)()

    @property
    def path(self) -> str:
        family = json.loads((CASES / self.provider / self.case / "meta.json").read_text())["family"]
        cls = adapter_class(self.provider)
        return f"/v1/integrations/{cls.kind}/{self.provider}/webhooks/{family}"

    @property
    def body(self) -> bytes:
        return (CASES / self.provider / self.case / "body.raw").read_bytes()

    def headers(self, secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        return self.adapter.sign(body, secret=secret, timestamp=timestamp or int(time.time()), msg_id="msg_sec_1")


def _whsec(text: str) -> str:
    return "whsec_" + base64.b64encode(text.encode()).decode()


SCHEMES = [
    Scheme("standard-webhooks", "inhouse-wms", "stock.adjusted", (_whsec("one"), _whsec("two"), _whsec("three"))),
    Scheme("hex-hmac", "deliverect", "snooze", ("dl-one", "dl-two", "dl-three")),
    Scheme("base64-hmac", "shopify", "inventory_levels.update", ("sh-one", "sh-two", "sh-three")),
    Scheme("bearer-token", "petpooja", "item_out_of_stock", ("pp-one", "pp-two", "pp-three")),
    Scheme("header-token", "urbanpiper", "inventory_update", ("up-one", "up-two", "up-three")),
    Scheme("basic-auth", "lightspeed", "ORDER.READY_FOR_PICKUP", ("ls:one", "ls:two", "ls:three")),
]


def _send(stack: Stack, tenant: str, scheme: Scheme, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    status, payload, _ = post(stack.receiver, tenant, scheme.path, body, headers)
    return status, payload


def _tampered(scheme: Scheme, secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    """A body byte flipped (for schemes whose signature covers the body), else the credential altered."""
    if scheme.adapter.auth.covers_body:
        flipped = bytearray(body)
        at = body.index(b":") + 1
        flipped[at:at + 1] = b" " if body[at:at + 1] != b" " else b"\t"
        return bytes(flipped), scheme.headers(secret, body)
    return body, scheme.headers(secret[:-1] + ("x" if secret[-1] != "x" else "y"), body)


def _accepted(status: int) -> bool:
    return status in (200, 202)  # some vendors get their own 200 reply instead of the 202


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.name for s in SCHEMES])
def test_scheme(stack: Stack, scheme: Scheme) -> None:
    tenant, other = new_tenant(stack), new_tenant(stack)
    first, second, third = scheme.secrets
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", first)
    stack.cli("sources", "add", other, scheme.provider, "--secret", "someone-else:" + first[::-1])
    body = scheme.body

    status, payload = _send(stack, tenant, scheme, body, scheme.headers(first, body))
    assert _accepted(status), payload
    stored = raw_rows(stack, tenant)
    assert stored == 1

    refused: list[tuple[str, bytes, dict[str, str], str]] = [
        ("tampered", *_tampered(scheme, first, body), tenant),
        ("missing", body, {}, tenant),
        ("wrong tenant", body, scheme.headers(first, body), other),
    ]
    if scheme.adapter.auth.timestamped:
        now = int(time.time())  # 100 s beyond the 300 s tolerance: the requests before may take a while
        refused += [("stale", body, scheme.headers(first, body, timestamp=now - 400), tenant),
                    ("future-dated", body, scheme.headers(first, body, timestamp=now + 400), tenant)]
    with NothingStored(stack):
        for what, sent, headers, host_tenant in refused:
            status, payload = _send(stack, host_tenant, scheme, sent, headers)
            assert (status, payload) == (401, UNAUTHORIZED), what
    audit = stack.wait_for("SELECT actor, details, remote_addr FROM audit_log WHERE action = 'auth.failure' "
                           "AND tenant_id = $1", tenant, check=lambda rows: len(rows) >= len(refused) - 1)
    assert {r["actor"] for r in audit} == {f"webhook:{scheme.provider}"}
    assert all(r["remote_addr"] == "127.0.0.1" for r in audit)

    # rotation: the new secret and the previous one are both valid; the one before them is revoked
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", second)
    eventually(lambda: _accepted(_send(stack, tenant, scheme, body, scheme.headers(second, body))[0]),
               "the rotated-in secret is accepted")
    assert _accepted(_send(stack, tenant, scheme, body, scheme.headers(first, body))[0])
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", third)
    eventually(lambda: _send(stack, tenant, scheme, body, scheme.headers(first, body))[0] == 401,
               "the secret two rotations back is refused")
    for secret in (second, third):
        assert _accepted(_send(stack, tenant, scheme, body, scheme.headers(secret, body))[0]), secret
    active = stack.query("SELECT count(*) AS n FROM source_secrets s JOIN sources USING (source_id) "
                         "WHERE tenant_id = $1 AND provider = $2 AND s.revoked_at IS NULL", tenant, scheme.provider)
    assert active[0]["n"] == 2


def test_timestamp_tolerance_is_configurable_per_source_in_both_directions(stack: Stack) -> None:
    scheme = SCHEMES[0]
    tenant = new_tenant(stack)
    secret = scheme.secrets[0]
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", secret, "--tolerance-s", "30")
    body, now = scheme.body, int(time.time())
    assert _accepted(_send(stack, tenant, scheme, body, scheme.headers(secret, body, timestamp=now - 20))[0])
    with NothingStored(stack):
        for skew in (-60, 60):  # inside the default 300 s, outside this source's 30 s
            status, _ = _send(stack, tenant, scheme, body, scheme.headers(secret, body, timestamp=now + skew))
            assert status == 401, skew


def test_ip_allowlist_ignores_forwarded_for_from_untrusted_peers(stack: Stack) -> None:
    scheme = SCHEMES[1]
    tenant = new_tenant(stack)
    secret = scheme.secrets[0]
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", secret, "--allow-cidr", "10.0.0.0/8")
    body = scheme.body
    with NothingStored(stack):
        # the peer is 127.0.0.1, not a trusted proxy: its X-Forwarded-For claim is not believed
        status, payload = _send(stack, tenant, scheme, body,
                                {**scheme.headers(secret, body), "X-Forwarded-For": "10.1.2.3"})
        assert (status, payload) == (401, UNAUTHORIZED)
    reasons = stack.wait_for("SELECT details FROM audit_log WHERE tenant_id = $1 AND action = 'auth.failure'", tenant)
    assert "ip_not_allowed" in str(reasons)
    stack.cli("sources", "add", tenant, scheme.provider, "--allow-cidr", "10.0.0.0/8", "--allow-cidr",
              "127.0.0.1/32")
    eventually(lambda: _accepted(_send(stack, tenant, scheme, body, scheme.headers(secret, body))[0]),
               "the allowlisted peer is accepted")


def test_source_rate_limit_is_429_with_retry_after(stack: Stack) -> None:
    scheme = SCHEMES[3]
    tenant = new_tenant(stack)
    secret = scheme.secrets[0]
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", secret, "--rate-limit", "1")
    body = scheme.body
    results = [post(stack.receiver, tenant, scheme.path, body, scheme.headers(secret, body)) for _ in range(5)]
    limited = [r for r in results if r[0] == 429]
    assert limited, [r[0] for r in results]
    assert limited[0][1]["error"]["code"] == 429 and int(limited[0][2]["Retry-After"]) >= 1


def test_ip_allowlist_also_guards_the_bulk_import_route(stack: Stack) -> None:
    """A source's allowlist covers every route of that source, the streamed import too."""
    tenant = new_tenant(stack)
    secret = "gm-import-secret"
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", secret, "--allow-cidr", "10.0.0.0/8")
    path = "/v1/integrations/seller/google-merchant/import"
    feed = (CASES / "google-merchant" / "feed.csv" / "body.raw").read_bytes()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "text/csv"}
    with NothingStored(stack):
        status, payload, _ = post(stack.receiver, tenant, path, feed, headers)
        assert (status, payload) == (401, UNAUTHORIZED)
    reasons = stack.wait_for("SELECT details FROM audit_log WHERE tenant_id = $1 AND action = 'auth.failure'", tenant)
    assert "ip_not_allowed" in str(reasons)
    stack.cli("sources", "add", tenant, "google-merchant", "--allow-cidr", "127.0.0.1/32")
    eventually(lambda: _accepted(post(stack.receiver, tenant, path, feed, headers)[0]), "the allowlisted peer")


def test_unsigned_requests_do_not_spend_the_vendors_rate_limit(stack: Stack) -> None:
    """Anyone who knows a webhook URL can send unsigned requests: they are 401s, and they must not drain the
    source's bucket, or the vendor's real webhooks get 429s (and some vendors never retry)."""
    scheme = SCHEMES[1]
    tenant = new_tenant(stack)
    secret = scheme.secrets[0]
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", secret, "--rate-limit", "1")
    body = scheme.body
    junk = [post(stack.receiver, tenant, scheme.path, body, {})[0] for _ in range(20)]
    assert set(junk) == {401}, junk
    status, payload = _send(stack, tenant, scheme, body, scheme.headers(secret, body))
    assert status == 202, payload


def test_credentials_are_redacted_and_secrets_encrypted_at_rest(stack: Stack) -> None:
    scheme = SCHEMES[5]  # basic auth: the credential is in Authorization
    tenant = new_tenant(stack)
    secret = "redact-user:very-secret-password-42"
    stack.cli("sources", "add", tenant, scheme.provider, "--secret", secret)
    body = scheme.body
    status, payload = _send(stack, tenant, scheme, body, {**scheme.headers(secret, body), "X-Api-Key": "pk_1_zzz",
                                                          "X-Signature": "deadbeef"})
    assert _accepted(status), payload
    raw_id = stack.wait_for("SELECT raw_id::text AS raw_id FROM raw_payloads WHERE tenant_id = $1", tenant)[0]["raw_id"]
    meta = json.loads(stack.cli("raw", "show", raw_id).stdout.splitlines()[0])
    headers = {k.lower(): v for k, v in meta["headers"].items()}
    assert headers["authorization"] == headers["x-api-key"] == headers["x-signature"] == "[redacted]"
    sealed = stack.query("SELECT secret_enc FROM source_secrets JOIN sources USING (source_id) WHERE tenant_id = $1",
                         tenant)
    assert sealed and all(b"very-secret-password-42" not in bytes(r["secret_enc"]) for r in sealed)
    token = base64.b64encode(secret.encode()).decode()
    for service in ("receiver", "mapper", "dedupe"):
        text = stack.logs(service)
        assert "very-secret-password-42" not in text and token not in text, service
