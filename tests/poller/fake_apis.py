"""A local aiohttp server speaking each pull API's documented shapes (the reference samples), with auth checks,
paging, 429 + Retry-After and token revocation, recording every request it answers."""
from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

SAMPLES = Path("/work/shared/reference/samples")
LS_MENU = (SAMPLES / "pos/lightspeed_k/menu_load_response_pull.json").read_bytes()
REVEL_PAGE2 = (SAMPLES / "pos/revel/product_list_response_pull.json").read_bytes()
ATLAS_MENU = (SAMPLES / "pos/atlas_kitchen/menu_detail_response_pull.json").read_bytes()
VIN_STATUS = (SAMPLES / "erp/vinculum/inventory_status_v3.response.json").read_bytes()
VIN_WH = (SAMPLES / "erp/vinculum/wh_inventory_v4.response.json").read_bytes()
UC_SNAPSHOT = (SAMPLES / "erp/unicommerce/inventory_snapshot.response.json").read_bytes()


def revel_page1() -> bytes:
    """Page 1 of 2: another product, ``meta.next`` pointing at page 2 (tastypie)."""
    data = json.loads(REVEL_PAGE2)
    data["meta"].update(limit=1, total_count=2, next="/resources/Product/?establishment=1&format=json&limit=1&offset=1")
    obj = data["objects"][0]
    obj.update(id=1235, uuid="b1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5e", name="Veggie Burger", sku="BURG-VEG",
               barcode="0123456789029", resource_uri="/resources/Product/1235/")
    return json.dumps(data, indent=2).encode()


def vin_status_page(page: int) -> bytes:
    """inventoryStatus with two pages: page 1 is the sample re-paged, page 2 one more SKU."""
    data = json.loads(VIN_STATUS)
    data["response"].update(totalPages=2, currentPage=page)
    if page == 2:
        data["response"]["inventoryMap"] = [{"SKU-BREAD-400": [{"skuCode": "SKU-BREAD-400", "location": "KOR",
                                                                 "includeNewSKU": "y", "qty": 9, "committedQty": 1}]}]
    return json.dumps(data, indent=2).encode()


def vin_status_unlocated() -> bytes:
    """inventoryStatus for the other polled locCode (BLR): one page whose row names no ``location`` (the
    Swagger's own example omits it), so only the request says where the stock is."""
    data = json.loads(VIN_STATUS)
    data["response"].update(totalSkus=1, totalPages=1, currentPage=1)
    data["response"]["inventoryMap"] = [{"ONION-KG": [{"skuCode": "ONION-KG", "includeNewSKU": "y", "qty": 40,
                                                      "committedQty": 0}]}]
    return json.dumps(data, indent=2).encode()


REVEL_P1 = revel_page1()
VIN_P1, VIN_P2 = vin_status_page(1), vin_status_page(2)
VIN_BLR = vin_status_unlocated()


@dataclass
class Fake:
    """Knobs a test turns before a pull, and what the server saw."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    throttle_once: set[str] = field(default_factory=set)  # path prefixes answered 429 (Retry-After: 1) once
    revoke_once: set[str] = field(default_factory=set)  # path prefixes answered 401 once (token revoked)
    ls_refresh: str = "ls-refresh-0"  # the one valid (single-use) Lightspeed refresh token
    issued: int = 0
    atlas_menu: bytes = ATLAS_MENU  # what GET /admin/v1/menus/8921 serves (a test edits the menu)
    valid_tokens: set[str] = field(default_factory=set)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seen(self, path_prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(path_prefix)]


def make_app(fake: Fake) -> web.Application:
    def deny() -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401)

    def bearer_ok(request: web.Request) -> bool:
        value = request.headers.get("Authorization", "")
        return value.lower().startswith("bearer ") and value[7:] in fake.valid_tokens

    def new_token(prefix: str) -> str:
        fake.issued += 1
        token = f"{prefix}-at-{fake.issued}"
        fake.valid_tokens.add(token)
        return token

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        fake.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers), "body": body})
        for prefix in list(fake.throttle_once):
            if request.path.startswith(prefix):
                fake.throttle_once.discard(prefix)
                return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": "1"})
        for prefix in list(fake.revoke_once):
            if request.path.startswith(prefix):
                fake.revoke_once.discard(prefix)
                fake.valid_tokens.clear()
                return deny()
        return await handler(request)  # type: ignore[no-any-return]

    # Lightspeed K-Series: OAuth2 authorization-code refresh with single-use refresh tokens
    async def ls_token(request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        basic = base64.b64encode(b"ls-client:ls-secret").decode()
        if request.headers.get("Authorization") != f"Basic {basic}" or form.get("grant_type") != ["refresh_token"] \
                or form.get("refresh_token") != [fake.ls_refresh]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        fake.ls_refresh = f"ls-refresh-{fake.issued + 1}"
        return web.json_response({"access_token": new_token("ls"), "token_type": "bearer", "expires_in": 3600,
                                  "refresh_token": fake.ls_refresh})

    async def ls_menu_list(request: web.Request) -> web.Response:
        if not bearer_ok(request):
            return deny()
        return web.json_response([{"id": 141948669133027, "name": "Main Menu"}])

    async def ls_menu_load(request: web.Request) -> web.Response:
        if not bearer_ok(request) or request.query.get("businessLocationId") != "45454":
            return deny()
        return web.Response(body=LS_MENU, content_type="application/json")

    # Revel: API-AUTHENTICATION key:secret, tastypie paging
    async def revel_products(request: web.Request) -> web.Response:
        if request.headers.get("API-AUTHENTICATION") != "rv-key:rv-secret":
            return deny()
        body = REVEL_PAGE2 if request.query.get("offset") == "1" else REVEL_P1
        return web.Response(body=body, content_type="application/json")

    # Atlas Admin API: X-Api-Key + X-Merchant-Id
    async def atlas_menus(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != "atlas-key" or request.headers.get("X-Merchant-Id") != "m-77":
            return deny()
        return web.json_response([{"id": 8921}])

    async def atlas_menu(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != "atlas-key" or request.headers.get("X-Merchant-Id") != "m-77":
            return deny()
        if request.match_info["id"] != "8921":
            return web.json_response({"error": "not found"}, status=404)
        return web.Response(body=fake.atlas_menu, content_type="application/json")

    # Vinculum: v3 form RequestBody (credentials in the form), v4 JSON (credentials in headers)
    async def vin_status(request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        if form.get("ApiOwner") != ["qcomm_int"] or form.get("ApiKey") != ["vin-key"]:
            return web.json_response({"responseCode": 1, "responseMessage": "Invalid ApiKey"})
        request_body = json.loads(form["RequestBody"][0])
        if request_body.get("locCode") == "BLR":
            return web.Response(body=VIN_BLR, content_type="application/json")
        body = VIN_P2 if request_body["pageNumber"] == 2 else VIN_P1
        return web.Response(body=body, content_type="application/json")

    async def vin_wh(request: web.Request) -> web.Response:
        if request.headers.get("ApiOwner") != "qcomm_int" or request.headers.get("ApiKey") != "vin-key":
            return web.json_response({"responseCode": 1, "responseMessage": "Invalid ApiKey"})
        return web.Response(body=VIN_WH, content_type="application/json")

    # Unicommerce: password grant (GET with query), bearer + Facility
    async def uc_token(request: web.Request) -> web.Response:
        q = request.query
        if (q.get("grant_type"), q.get("client_id"), q.get("username"), q.get("password")) != \
                ("password", "my-trusted-client", "uc-admin", "uc-pass"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": new_token("uc"), "token_type": "bearer", "expires_in": 41621,
                                  "refresh_token": "uc-refresh", "scope": "read trust write"})

    async def uc_snapshot(request: web.Request) -> web.Response:
        if not bearer_ok(request) or request.headers.get("Facility") != "DS-BLR-KOR-01":
            return deny()
        return web.Response(body=UC_SNAPSHOT, content_type="application/json")

    app = web.Application(middlewares=[record])
    app.router.add_post("/oauth/token", ls_token)
    app.router.add_get("/o/op/1/menu/list", ls_menu_list)
    app.router.add_get("/o/op/1/menu/load/{id}", ls_menu_load)
    app.router.add_get("/resources/Product/", revel_products)
    app.router.add_get("/admin/v1/menus", atlas_menus)
    app.router.add_get("/admin/v1/menus/{id}", atlas_menu)
    app.router.add_post("/RestWS/api/eretail/v3/sku/inventoryStatus", vin_status)
    app.router.add_post("/RestWS/api/eretail/v4/stock/getWhInventory", vin_wh)
    app.router.add_get("/uc/oauth/token", uc_token)
    app.router.add_post("/uc/services/rest/v1/inventory/inventorySnapshot/get", uc_snapshot)
    return app


class FakeServer:
    """The fake on its own event loop thread (the stack tests are synchronous)."""

    def __init__(self) -> None:
        self.fake = Fake()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> Fake:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.fake

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.fake), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.fake.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
