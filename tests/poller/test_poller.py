"""The poller in process against the local fake APIs: auth kinds, paging, 429, 401 → refresh, windows, raw log."""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import pytest

from ingest.adapters.base import Headers, RawDelivery
from ingest.adapters.vinculum import VinculumAdapter
from ingest.canonical.mapping import MappingContext, auto_canonical_id
from ingest.db import repositories
from services.poller import app as poller_app
from services.poller.handler import notification_refetches
from services.poller.settings import PollerSettings
from tests.poller import fake_apis
from tests.poller.fake_apis import Fake, FakeServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def fake(server: FakeServer) -> Fake:
    server.fake.requests.clear()
    return server.fake


def _settings() -> PollerSettings:
    # quick retries for tests; Retry-After (1 s) still wins where the server names it
    return PollerSettings(poller_backoff_base_s=0.05, poller_backoff_max_s=2.0, poller_notifications=False)


async def _with_poller(fn: Any) -> Any:
    p = await poller_app.build(_settings())
    await p.start()
    try:
        return await fn(p)
    finally:
        await p.close()


async def _source(p: poller_app.Poller, provider: str, base: str, auth: str, creds: dict[str, Any],
                  options: dict[str, Any]) -> str:
    tenant = f"p{uuid.uuid4().hex[:10]}"
    await repositories.add_tenant(p.pool, tenant, auto_create_items=True, default_currency="EUR")
    await poller_app.register(p.pool, p.box, tenant=tenant, provider=provider, base_url=base, auth_kind=auth,
                              credentials=creds, interval_s=300, options=options)
    return tenant


async def _rows(p: poller_app.Poller, raw_ids: list[str]) -> list[dict[str, Any]]:
    rows = await p.pool.fetch("SELECT * FROM raw_payloads WHERE raw_id = ANY($1::uuid[]) ORDER BY received_at",
                              raw_ids)
    out = []
    for r in rows:
        d = dict(r)
        d["body"] = await p.store.get_range(r["segment_key"], r["segment_offset"], r["segment_length"])
        d["headers"] = json.loads(r["headers"]) if isinstance(r["headers"], str) else r["headers"]
        out.append(d)
    return out


def test_lightspeed_oauth_refresh_list_then_load_with_429_and_401(settings_env: dict[str, str], fake: Fake) -> None:
    fake.ls_refresh = "ls-refresh-0"
    fake.throttle_once.add("/o/op/1/menu/load")

    async def go(p: poller_app.Poller) -> None:
        tenant = await _source(p, "lightspeed", fake.base, "oauth2_refresh",
                               {"client_id": "ls-client", "client_secret": "ls-secret",
                                "refresh_token": "ls-refresh-0"}, {"business_locations": ["45454"]})
        result = await p.run_now(tenant, "lightspeed")
        assert result is not None and result.status == "ok", result
        assert len(result.documents) == 1  # the list is followed, not stored; the load is stored
        [row] = await _rows(p, result.documents)
        assert row["body"] == fake_apis.LS_MENU  # byte-exact in S3
        assert (row["provider"], row["kind"], row["family"], row["route"]) == \
            ("lightspeed", "pos", "menu", "pull:menu/load")
        assert row["headers"]["X-Business-Location-Id"] == "45454"
        loads = fake.seen("/o/op/1/menu/load")
        assert len(loads) == 2  # 429 once (Retry-After: 1), then served
        # the refresh token rotated and was stored: a revoked access token is replaced with the new one
        fake.revoke_once.add("/o/op/1/menu/list")
        again = await p.run_now(tenant, "lightspeed")
        assert again is not None and again.status == "ok", again
        grants = [parse_qs(r["body"].decode())["refresh_token"][0] for r in fake.seen("/oauth/token")]
        assert grants[0] == "ls-refresh-0" and len(grants) == 2 and grants[1] != "ls-refresh-0"
        state = await p.pool.fetchrow("SELECT last_status, consecutive_failures FROM poll_sources "
                                      "WHERE tenant_id = $1", tenant)
        assert (state["last_status"], state["consecutive_failures"]) == ("ok", 0)

    asyncio.run(_with_poller(go))


def test_revel_api_authentication_follows_tastypie_pages(settings_env: dict[str, str], fake: Fake) -> None:
    async def go(p: poller_app.Poller) -> None:
        tenant = await _source(p, "revel", fake.base, "api_authentication",
                               {"api_key": "rv-key", "api_secret": "rv-secret"},
                               {"establishments": [1], "instance": "acmeburgers", "page_size": 1})
        result = await p.run_now(tenant, "revel")
        assert result is not None and result.status == "ok", result
        rows = await _rows(p, result.documents)
        assert [r["body"] for r in rows] == [fake_apis.REVEL_P1, fake_apis.REVEL_PAGE2]
        assert [r["headers"]["X-Pull-Page"] for r in rows] == ["1", "2"]
        assert rows[0]["headers"]["X-Revel-Establishment-Id"] == "1"
        assert rows[0]["headers"]["X-Revel-Instance"] == "acmeburgers"
        assert all("API-AUTHENTICATION" not in r["headers"] for r in rows)  # no secret is stored

    asyncio.run(_with_poller(go))


def test_vinculum_form_and_v4_json_pages_and_overlapping_windows(settings_env: dict[str, str], fake: Fake) -> None:
    async def go(p: poller_app.Poller) -> None:
        tenant = await _source(p, "vinculum", f"{fake.base}/RestWS/api/eretail", "vinculum",
                               {"api_owner": "qcomm_int", "api_key": "vin-key"},
                               {"endpoints": ["inventoryStatus", "getWhInventory"], "locations": ["KOR"],
                                "overlap_s": 120})
        first = await p.run_now(tenant, "vinculum")
        assert first is not None and first.status == "ok", first
        rows = await _rows(p, first.documents)
        assert [r["body"] for r in rows] == [fake_apis.VIN_P1, fake_apis.VIN_P2, fake_apis.VIN_WH]
        assert [r["family"] for r in rows] == ["inventoryStatus", "inventoryStatus", "getWhInventory"]
        assert all("vin-key" not in json.dumps(r["headers"]) for r in rows)
        form = parse_qs(fake.seen("/RestWS/api/eretail/v3")[0]["body"].decode())
        assert form["ApiOwner"] == ["qcomm_int"]
        req1 = json.loads(form["RequestBody"][0])
        assert (req1["pageNumber"], req1["locCode"]) == (1, "KOR")
        v4 = fake.seen("/RestWS/api/eretail/v4")[0]
        assert v4["headers"]["ApiKey"] == "vin-key" and json.loads(v4["body"])["locCode"] == "KOR"
        fake.requests.clear()
        second = await p.run_now(tenant, "vinculum")
        assert second is not None and second.status == "ok"
        req2 = json.loads(parse_qs(fake.seen("/RestWS/api/eretail/v3")[0]["body"].decode())["RequestBody"][0])
        fmt = "%d/%m/%Y %H:%M:%S"
        # the next window starts 2 minutes before the previous one ended
        assert datetime.strptime(req2["fromDate"], fmt) < datetime.strptime(req1["toDate"], fmt)

    asyncio.run(_with_poller(go))


def test_vinculum_several_locations_store_the_polled_location_with_each_document(settings_env: dict[str, str],
                                                                               fake: Fake) -> None:
    options = {"endpoints": ["inventoryStatus"], "locations": ["KOR", "BLR"], "location": "KOR"}

    async def go(p: poller_app.Poller) -> None:
        tenant = await _source(p, "vinculum", f"{fake.base}/RestWS/api/eretail", "vinculum",
                               {"api_owner": "qcomm_int", "api_key": "vin-key"}, options)
        result = await p.run_now(tenant, "vinculum")
        assert result is not None and result.status == "ok", result
        rows = await _rows(p, result.documents)
        assert [r["body"] for r in rows] == [fake_apis.VIN_P1, fake_apis.VIN_P2, fake_apis.VIN_BLR]
        asked = [json.loads(parse_qs(r["body"].decode())["RequestBody"][0])["locCode"]
                 for r in fake.seen("/RestWS/api/eretail/v3")]
        assert asked == ["KOR", "KOR", "BLR"]
        assert [r["headers"].get("X-Vinculum-Location") for r in rows] == asked
        # the BLR document's row names no location: the stored header places it, not the option (KOR)
        adapter = VinculumAdapter([], options=options)
        blr = rows[2]
        source = adapter.parse(RawDelivery(body=blr["body"], headers=Headers(blr["headers"]),
                                           raw_id=str(blr["raw_id"]), tenant_id=tenant, provider="vinculum",
                                           family=blr["family"], received_at=blr["received_at"],
                                           route=blr["route"]))
        keys = adapter.mapping_keys(source)
        assert {(k.entity, k.external_id) for k in keys} == {("store", "BLR"), ("item", "ONION-KG")}
        ctx = MappingContext(tenant, "vinculum", {k: auto_canonical_id(tenant, "vinculum", k) for k in keys})
        [command] = adapter.to_canonical_commands(source, ctx)
        assert command.store_id == ctx.ids[next(k for k in keys if k.entity == "store")]

    asyncio.run(_with_poller(go))


def test_unicommerce_password_grant_facility_and_atlas_notification_refetch(settings_env: dict[str, str],
                                                                           fake: Fake) -> None:
    async def go(p: poller_app.Poller) -> None:
        uc = await _source(p, "unicommerce", f"{fake.base}/uc", "oauth2_password",
                           {"username": "uc-admin", "password": "uc-pass"}, {"facilities": ["DS-BLR-KOR-01"]})
        result = await p.run_now(uc, "unicommerce")
        assert result is not None and result.status == "ok", result
        [row] = await _rows(p, result.documents)
        assert row["body"] == fake_apis.UC_SNAPSHOT and row["family"] == "inventorySnapshot"
        assert row["headers"]["Facility"] == "DS-BLR-KOR-01"
        assert json.loads(fake.seen("/uc/services")[0]["body"]) == {"updatedSinceInMinutes": 1440}

        atlas = await _source(p, "atlas", fake.base, "api_key", {"token": "atlas-key"}, {"merchant_id": "m-77"})
        await p.pool.execute("UPDATE poll_sources SET next_run_at = now() + interval '1 day' WHERE tenant_id = $1",
                             atlas)
        notification = RawDelivery(
            body=(fake_apis.SAMPLES / "pos/atlas_kitchen/menu_updated.json").read_bytes(), headers=Headers({}),
            raw_id=str(uuid.uuid4()), tenant_id=atlas, provider="atlas", family="menu",
            received_at=datetime.now(timezone.utc), route="/v1/integrations/pos/atlas/webhooks/menu")
        found = notification_refetches([notification])
        assert found == [(atlas, "atlas", "GET /admin/v1/menus/8921")]
        assert await p.schedule_refetch(found) == 1
        assert [dict(r) for r in await p.pool.fetch(
            "SELECT poll_id FROM poll_sources WHERE tenant_id = $1 AND next_run_at <= now()", atlas)]
        fake.requests.clear()
        done = await p.run_now(atlas, "atlas")
        assert done is not None and done.status == "ok", done
        assert [r["path"] for r in fake.requests] == ["/admin/v1/menus/8921"]  # only the notified menu
        [menu] = await _rows(p, done.documents)
        assert menu["body"] == fake_apis.ATLAS_MENU and menu["headers"]["X-Merchant-Id"] == "m-77"
        state = await p.pool.fetchval("SELECT state FROM poll_sources WHERE tenant_id = $1", atlas)
        assert json.loads(state)["refetch"] == []

    asyncio.run(_with_poller(go))


def test_a_failing_source_backs_off_and_keeps_its_window(settings_env: dict[str, str], fake: Fake) -> None:
    async def go(p: poller_app.Poller) -> None:
        tenant = await _source(p, "unicommerce", f"{fake.base}/uc", "oauth2_password",
                               {"username": "uc-admin", "password": "wrong"}, {"facilities": ["DS-BLR-KOR-01"]})
        result = await p.run_now(tenant, "unicommerce")
        assert result is not None and result.status == "failed" and "token endpoint answered 400" in result.error
        row = await p.pool.fetchrow("SELECT * FROM poll_sources WHERE tenant_id = $1", tenant)
        assert row["consecutive_failures"] == 1 and row["last_status"] == "failed"
        assert json.loads(row["state"]).get("windows") == {}
        assert (row["next_run_at"] - datetime.now(timezone.utc)).total_seconds() > 500  # 2 × 300 s interval

    asyncio.run(_with_poller(go))
