"""Composition root of the support service: the JSON API, the dashboard, replay jobs, re-drive and retention."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ingest.db.pool import PG_OUTAGE, create_pool
from ingest.errors import DependencyUnavailable
from ingest.observability.health import add_health_routes
from ingest.rawlog.publisher import RawPublisher
from ingest.rawlog.s3 import S3Store
from services.receiver.http import error, metrics_middleware
from services.support import api, pages
from services.support.api import SUPPORT, USER
from services.support.auth import COOKIE, Authenticator, bootstrap_admin
from services.support.core import Support
from services.support.jobs import JobRunner
from services.support.redrive import redrive_mapped
from services.support.retention import apply_configured as apply_retention
from services.support.settings import SupportServiceSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
PUBLIC = ("/login", "/static/", "/healthz", "/readyz", "/metrics")


@web.middleware
async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """Bearer token for the API, the login cookie for the dashboard (and the API calls its pages make)."""
    if not request.path.startswith(PUBLIC):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
        try:
            user = await request.app[SUPPORT].auth.user(token)
        except PG_OUTAGE:
            return error(503, "database unavailable", "PostgreSQL is unavailable; retry shortly",
                         headers={"Retry-After": "5"})
        if user is None:
            if request.path.startswith("/api/"):
                return error(401, "unauthorized", "a valid support token is required (Authorization: Bearer)")
            return web.Response(status=302, headers={"Location": "/login"})
        request[USER] = user
    try:
        return await handler(request)
    except web.HTTPRedirection as exc:  # the pages redirect after a POST; keep them redirects, not envelopes
        return web.Response(status=exc.status, headers=exc.headers)
    except (DependencyUnavailable, *PG_OUTAGE) as exc:
        return error(503, "dependency unavailable", str(exc)[:300], headers={"Retry-After": "5"})


async def _every(seconds: float, name: str, fn: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await fn()
        except (DependencyUnavailable, *PG_OUTAGE) as exc:
            log.warning("%s skipped a round: %s", name, exc)
        except Exception:  # noqa: BLE001 — a periodic task must outlive one bad round
            log.exception("%s round failed", name)
        await asyncio.sleep(seconds)


async def create_app(settings: SupportServiceSettings) -> web.Application:
    app = web.Application(middlewares=[metrics_middleware("support"), authenticate], client_max_size=64 * 2**20)
    pool = await create_pool(settings.dsn, max_size=8)
    store = S3Store(settings)
    publisher = RawPublisher(settings, client_id="pos-ingest-support-replay")
    runner = JobRunner(pool, store, publisher, owner=f"support-{socket.gethostname()}-{os.getpid()}",
                       lease_s=settings.replay_lease_s, poll_s=settings.replay_poll_s,
                       max_concurrent=settings.replay_max_concurrent_jobs)
    support = Support(settings, pool, store, publisher, runner, Authenticator(pool, settings.user_cache_s))
    app[SUPPORT] = support
    tasks: list[asyncio.Task[None]] = []

    async def retention() -> None:
        report = await apply_retention(pool, store, settings)
        if report["created"] or report["dropped"]:
            log.info("retention: %s", report)

    async def redrive() -> None:
        await redrive_mapped(pool, actor="support:auto-redrive", rate_per_s=settings.replay_rate_per_s)

    async def on_startup(app: web.Application) -> None:
        if settings.admin_token:
            await bootstrap_admin(pool, settings.admin_token.get_secret_value())
        tasks.append(asyncio.create_task(runner.serve(), name="replay-runner"))
        tasks.append(asyncio.create_task(_every(settings.redrive_interval_s, "redrive", redrive), name="redrive"))
        tasks.append(asyncio.create_task(_every(settings.retention_interval_s, "retention", retention),
                                         name="retention"))

    async def on_cleanup(app: web.Application) -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.stop()
        await asyncio.get_running_loop().run_in_executor(None, publisher.close)
        await pool.close()
        store.close()

    async def ready() -> bool:
        try:
            await pool.fetchval("SELECT 1")
            return True
        except PG_OUTAGE:
            return False

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    add_health_routes(app, ready)
    api.add_routes(app)
    pages.add_routes(app)
    app.router.add_static("/static/", STATIC)
    return app


async def main() -> None:
    settings = SupportServiceSettings()
    app = await create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, settings.support_host, settings.support_port).start()
    log.info("support listening on %s:%d", settings.support_host, settings.support_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
