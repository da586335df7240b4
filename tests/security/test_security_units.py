"""The receiver's security pieces on their own: proxies, allowlists, buckets, tokens, depth, key checks, the
throttled audit trail (against the real PostgreSQL)."""
from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from ingest import apikeys
from ingest.db import repositories
from services.receiver.partner import operation_view
from services.receiver.security import (
    AuthFailure,
    AuthFailureLog,
    RateLimiter,
    bearer_matches,
    client_address,
    ip_allowed,
    json_body_problem,
    json_depth,
    parse_networks,
)

TRUSTED = parse_networks("10.0.0.0/8, ::1")


@pytest.mark.parametrize("peer, xff, expected", [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),           # untrusted peer: its header is ignored
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),             # trusted proxy: the client it saw
    ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # right-most untrusted hop; spoofed left part
    ("10.0.0.5", None, "10.0.0.5"),
    ("10.0.0.5", "not-an-ip", "10.0.0.5"),
    ("::1", "2001:db8::1", "2001:db8::1"),
])
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(peer: str, xff: str | None,
                                                                         expected: str) -> None:
    assert str(client_address(peer, xff, TRUSTED)) == expected


def test_ip_allowlist() -> None:
    allow = parse_networks(["192.168.1.0/24", "2001:db8::/32"])
    assert ip_allowed("192.168.1.7", allow) and ip_allowed("2001:db8::5", allow)
    assert not ip_allowed("192.168.2.1", allow) and not ip_allowed(None, allow) and not ip_allowed("junk", allow)
    assert ip_allowed("8.8.8.8", [])  # no allowlist configured


def test_token_bucket_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.take("k", 2) for _ in range(2)] == [0.0, 0.0]
    wait = limiter.take("k", 2)
    assert wait == pytest.approx(0.5)
    assert limiter.take("other", 2) == 0.0  # buckets are per key
    now[0] += 0.5
    assert limiter.take("k", 2) == 0.0


def test_bearer_matches_only_the_configured_token() -> None:
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer s3cret", "s3cret")
    for presented in ("Bearer s3cre", "Bearer s3cretx", "s3cret", "Basic s3cret", "", None):
        assert not bearer_matches(presented, "s3cret"), presented
    assert not bearer_matches("Bearer ", None) and not bearer_matches("Bearer x", None) and \
        not bearer_matches("Bearer ", "")


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[[[["}]}') == 3
    assert json_depth(b'"\\"[[[["') == 0
    assert json_depth(b"[" * 5000 + b"]" * 5000) == 5000
    assert json_body_problem(b"[" * 65 + b"]" * 65, 64) == "JSON nested deeper than 64 levels"
    assert json_body_problem(b"[" * 64 + b"]" * 64, 64) is None
    assert "not UTF-8" in (json_body_problem(b'{"a": "\xff"}', 64) or "")


def test_operation_view_states() -> None:
    base = {"raw_id": "r", "provider": "standard", "family": "outlets.busy",
            "received_at": datetime(2026, 1, 14, 10, 0, tzinfo=timezone.utc), "published_at": None}
    assert operation_view(base)["status"] == "accepted"
    assert operation_view({**base, "published_at": base["received_at"]})["status"] == "processing"
    failed = operation_view({**base, "class": "mapping", "reason_code": "unmapped_reference", "message": "m"})
    assert failed["status"] == "failed" and failed["failure"] == {"class": "mapping",
                                                                  "reasonCode": "unmapped_reference", "message": "m"}
    done = operation_view({**base, "outcome": "processed", "command_types": ["B", "A", "B"]})
    assert (done["status"], done["commands"], done["receivedAt"]) == ("processed", {"A": 1, "B": 2},
                                                                      "2026-01-14T10:00:00Z")


def test_auth_failure_flood_is_one_insert_and_capped(database: str) -> None:
    async def go() -> list[dict[str, object]]:
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        try:
            published: list[dict[str, object]] = []
            audit = AuthFailureLog(pool, published.append, max_per_flush=50)
            tenant = f"flood{time.monotonic_ns()}"
            for n in range(500):
                audit.record(AuthFailure("webhook:deliverect", "signature_mismatch", tenant, "/v1/x", "192.0.2.1",
                                         provider="deliverect"))
            assert await audit.flush() == 51
            assert len(published) == 50 and published[0]["class"] == "auth"
            rows = await pool.fetch("SELECT action, details::text AS details FROM audit_log WHERE tenant_id = $1",
                                    tenant)
            return [dict(r) for r in rows]
        finally:
            await pool.close()

    rows = asyncio.run(go())
    assert sum(r["action"] == "auth.failure" for r in rows) == 50
    [suppressed] = [r for r in rows if r["action"] == "auth.failure.suppressed"]
    assert '"count": 450' in str(suppressed["details"])


def test_api_key_verify_refuses_every_wrong_key_alike(database: str) -> None:
    async def go() -> dict[str, list[float]]:
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        try:
            a, b = f"ka{time.monotonic_ns()}", f"kb{time.monotonic_ns()}"
            for t in (a, b):
                await repositories.add_tenant(pool, t)
            good = await apikeys.issue_with(pool, a, expires_at=None, name="", actor="test")
            other = await apikeys.issue_with(pool, b, expires_at=None, name="", actor="test")
            expired = await apikeys.issue_with(pool, a, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1),
                                               name="", actor="test")
            revoked = await apikeys.issue_with(pool, a, expires_at=None, name="", actor="test")
            assert good and other and expired and revoked
            assert await apikeys.revoke_with(pool, revoked["apiKeyId"], actor="test") == a
            assert (await apikeys.verify(pool, a, good["apiKey"])) is not None
            wrong = {"missing": None, "malformed": "garbage", "unknown id": "pk_999999999_" + "A" * 43,
                     "wrong secret": good["apiKey"][:-2] + "zz", "foreign": other["apiKey"],
                     "expired": expired["apiKey"], "revoked": revoked["apiKey"]}
            timings: dict[str, list[float]] = {}
            for name, presented in wrong.items():
                assert await apikeys.verify(pool, a, presented) is None, name
                for _ in range(30):
                    started = time.perf_counter()
                    await apikeys.verify(pool, a, presented)
                    timings.setdefault(name, []).append(time.perf_counter() - started)
            return timings
        finally:
            await pool.close()

    timings = asyncio.run(go())
    medians = {k: statistics.median(v) for k, v in timings.items()}
    print("verify medians (ms):", {k: round(v * 1000, 3) for k, v in medians.items()})
    # one query every time: no reason is an order of magnitude cheaper than another (loose: shared CI machine)
    assert max(medians.values()) < 5 * min(medians.values()), medians
