"""Composition root of the views: the Kafka → Redis consumer thread and the read API (tests reuse both)."""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ingest.db import repositories
from ingest.db.pool import PG_OUTAGE, create_pool
from ingest.errors import DependencyUnavailable
from ingest.observability.health import metrics_handler
from ingest.runtime import settle_heap
from services.receiver.handlers import TtlCache
from services.receiver.http import error, metrics_middleware, tenant_of
from services.views.consumer import ViewsConsumer
from services.views.settings import ViewsServiceSettings
from services.views.store import ViewReader, ViewStore

log = logging.getLogger(__name__)


@dataclass
class Views:
    """Everything the views process holds (built by ``build``)."""

    settings: ViewsServiceSettings
    store: ViewStore
    reader: ViewReader
    consumer: ViewsConsumer
    pool: Any
    admin: AdminClient
    tenants: TtlCache = field(default_factory=lambda: TtlCache(5.0))
    thread: threading.Thread | None = None
    #: set (from the loop's thread) when the consumer loop ends, with its exception if it crashed
    finished: asyncio.Future[BaseException | None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.finished = loop.create_future()

        def target() -> None:
            outcome: BaseException | None = None
            try:
                self.consumer.run()
            except BaseException as exc:  # noqa: BLE001 — handed to the event loop, which exits the process
                log.exception("views consumer stopped on an error")
                outcome = exc
            if not loop.is_closed():
                loop.call_soon_threadsafe(lambda: self.finished.done() or self.finished.set_result(outcome))  # type: ignore[union-attr]

        self.thread = threading.Thread(target=target, name="views-consumer", daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        self.consumer.stop()
        if self.thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.thread.join, 30)
        await self.reader.close()
        self.store.close()
        await self.pool.close()


async def build(settings: ViewsServiceSettings) -> Views:
    store = ViewStore.from_url(settings.redis_url, settings.key_base, cache_slots=settings.views_cache_slots)
    # min_size=0: the views consume and serve without PostgreSQL; it only answers "is this a tenant"
    pool = await create_pool(settings.dsn, min_size=0, max_size=2)
    return Views(settings=settings, store=store, reader=ViewReader.from_url(settings.redis_url, settings.key_base),
                 consumer=ViewsConsumer(settings, store), pool=pool,
                 admin=AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}))


async def create_app(settings: ViewsServiceSettings, views: Views | None = None, *,
                     consume: bool = True) -> web.Application:
    """The read API; with ``consume`` the consumer thread runs for the app's lifetime."""
    v = views or await build(settings)
    app = web.Application(middlewares=[metrics_middleware("views")])
    ready_cache: dict[str, float | bool] = {"at": 0.0, "ok": False}

    async def on_startup(app: web.Application) -> None:
        if consume:
            v.start()

    async def on_cleanup(app: web.Application) -> None:
        await v.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)

    async def tenant_or_error(request: web.Request) -> str | web.Response:
        tenant = tenant_of(request.host, settings.tenant_base_domain)
        if tenant is None:
            return error(404, "unknown tenant", f"no tenant in host {request.host!r}")
        hit, known = v.tenants.get(tenant)
        if not hit:
            try:
                known = await repositories.tenant_exists(v.pool, tenant)
            except PG_OUTAGE:
                return error(503, "database unavailable", "cannot check the tenant; retry shortly",
                             headers={"Retry-After": "5"})
            v.tenants.put(tenant, known)
        if not known:
            return error(404, "unknown tenant", f"tenant {tenant!r} does not exist")
        return tenant

    def view_route(read: Callable[[str, str], Awaitable[Any]], param: str, missing: str
                   ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A GET of one view: tenant from Host, ``read(tenant, id)``, 404 when it returns None."""
        async def route(request: web.Request) -> web.Response:
            tenant = await tenant_or_error(request)
            if isinstance(tenant, web.Response):
                return tenant
            ident = request.match_info[param]
            try:
                body = await read(tenant, ident)
            except DependencyUnavailable as exc:
                log.warning("views read failed: %s", exc.message)
                return error(503, "views unavailable", "Redis did not answer; retry shortly",
                             headers={"Retry-After": "5"})
            if body is None:
                return error(404, f"unknown {missing}", f"nothing received yet for {missing} {ident!r}")
            return web.json_response({"tenantId": tenant, **body})
        return route

    async def availability(tenant: str, store: str) -> dict[str, Any]:
        return {"storeId": store, "items": await v.reader.availability(tenant, store)}

    def broker_answers() -> bool:
        try:
            v.admin.list_topics(timeout=2)
            return True
        except KafkaException:
            return False

    async def healthz(request: web.Request) -> web.Response:
        alive = v.thread is None or v.thread.is_alive() or not consume
        return web.json_response({"status": "ok" if alive else "consumer stopped"}, status=200 if alive else 500)

    async def readyz(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        if loop.time() - float(ready_cache["at"]) > 1.0:
            ready_cache["ok"] = await v.reader.ping() and await loop.run_in_executor(None, broker_answers)
            ready_cache["at"] = loop.time()
        ok = bool(ready_cache["ok"])
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    app.router.add_get("/v1/views/stores/{storeId}/availability", view_route(availability, "storeId", "store"))
    app.router.add_get("/v1/views/stores/{storeId}/status", view_route(v.reader.status, "storeId", "store"))
    app.router.add_get("/v1/views/items/{itemId}", view_route(v.reader.item, "itemId", "item"))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def rebuild(settings: ViewsServiceSettings | None = None) -> dict[str, Any]:
    """Start a new, empty generation and delete the old ones; consumers re-read the topics into it."""
    s = settings or ViewsServiceSettings()
    store = ViewStore.from_url(s.redis_url, s.key_base)
    try:
        epoch, deleted = store.start_rebuild()
    finally:
        store.close()
    return {"epoch": epoch, "deletedKeys": deleted, "keyPrefix": s.key_base}


async def main() -> None:
    settings = ViewsServiceSettings()
    views = await build(settings)
    app = await create_app(settings, views)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.views_host, settings.views_port).start()
    log.info("views listening on %s:%d (keys under %s)", settings.views_host, settings.views_port,
             settings.key_base)
    settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    assert views.finished is not None
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([waiter, views.finished], return_when=asyncio.FIRST_COMPLETED)
    crashed = views.finished.result() if views.finished.done() else None
    waiter.cancel()
    await runner.cleanup()
    if crashed is not None:
        # exit non-zero so the supervisor (or Kubernetes) restarts us with backoff
        raise SystemExit(1)
