"""Receiver edges: tenant from Host, header redaction, route resolution."""
from __future__ import annotations

import pytest
from aiohttp import web

from services.receiver.handlers import resolve_route
from services.receiver.http import redact_headers, tenant_of


@pytest.mark.parametrize("host,tenant", [("acme.localhost:8080", "acme"), ("acme.localhost", "acme"),
                                         ("ACME.localhost", "acme"), ("localhost:8080", None),
                                         ("a.b.localhost", None), ("acme.example.com", None), (None, None),
                                         ("[::1]:8080", None)])
def test_tenant_is_the_first_label_under_the_base_domain(host: str | None, tenant: str | None) -> None:
    assert tenant_of(host, "localhost") == tenant


def test_credentials_and_signatures_are_redacted_everything_else_kept() -> None:
    out = redact_headers({"Authorization": "Bearer x", "X-Api-Key": "k", "webhook-signature": "v1,abc",
                          "X-Shopify-Hmac-Sha256": "h", "webhook-id": "evt_1", "Content-Type": "application/json"})
    assert out["webhook-id"] == "evt_1" and out["Content-Type"] == "application/json"
    assert {out[k] for k in ("Authorization", "X-Api-Key", "webhook-signature", "X-Shopify-Hmac-Sha256")} == \
        {"[redacted]"}


@pytest.mark.parametrize("kind,provider,tail,expected", [
    ("erp", "inhouse-wms", "webhooks/stock", ("inhouse-wms", "stock")),
    ("pos", "deliverect", "webhooks/menu", ("deliverect", "menu")),
    ("seller", "shopify", "webhooks/catalog", ("shopify", "catalog")),
    ("seller", "google-merchant", "import", ("google-merchant", "import")),
])
def test_routes_resolve_to_provider_and_family(kind: str, provider: str, tail: str, expected: tuple) -> None:  # type: ignore[type-arg]
    assert resolve_route(kind, provider, tail) == expected


@pytest.mark.parametrize("kind,provider,tail", [("erp", "nosuch", "webhooks/stock"),
                                                ("pos", "inhouse-wms", "webhooks/menu"),
                                                ("erp", "inhouse-wms", "webhooks/menu"),
                                                ("pos", "../../etc", "webhooks/menu")])
def test_unknown_routes_are_404_envelopes(kind: str, provider: str, tail: str) -> None:
    res = resolve_route(kind, provider, tail)
    assert isinstance(res, web.Response) and res.status == 404


# --- the tenant/source cache ------------------------------------------------------------------
async def test_cache_misses_in_flight_together_share_one_load_and_later_hits_none() -> None:
    import asyncio

    from services.receiver.handlers import TtlCache

    cache, calls = TtlCache(5.0), []

    async def load() -> str:
        calls.append(1)
        await asyncio.sleep(0.01)
        return "v"

    assert await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(100))) == ["v"] * 100
    assert await cache.get_or_load("k", load) == "v" and len(calls) == 1


async def test_cache_load_error_reaches_every_waiter_is_not_cached_and_a_cancelled_waiter_spares_the_rest(
        ) -> None:
    import asyncio

    from services.receiver.handlers import TtlCache

    cache, gate = TtlCache(5.0), asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise ConnectionError("down")

    waiters = [asyncio.ensure_future(cache.get_or_load("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # a client hanging up
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(isinstance(r, ConnectionError) for r in results[1:])

    async def ok() -> str:
        return "back"

    assert await cache.get_or_load("k", ok) == "back"  # the error was not cached


async def test_cache_entry_expires_after_its_ttl() -> None:
    import time

    from services.receiver.handlers import TtlCache

    cache, values = TtlCache(0.05), iter(["old", "new"])

    async def load() -> str:
        return next(values)

    assert await cache.get_or_load("k", load) == "old"
    time.sleep(0.06)
    assert await cache.get_or_load("k", load) == "new"
