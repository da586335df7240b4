"""``/healthz``, ``/readyz`` and ``/metrics`` for processes that have no HTTP API of their own."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_health_routes(app: web.Application, ready: Callable[[], Awaitable[bool]] | None = None) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        ok = await ready() if ready else True
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)


async def start_health_server(port: int, *, ready: Callable[[], Awaitable[bool]] | None = None,
                              host: str = "0.0.0.0") -> web.AppRunner:
    app = web.Application()
    add_health_routes(app, ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
