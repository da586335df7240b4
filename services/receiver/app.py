"""Composition root of the receiver: ``create_app`` builds everything; tests call it too."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ingest.adapters.registry import ADAPTERS, adapter_class, available_providers
from ingest.crypto import SecretBox
from ingest.db.pool import PG_OUTAGE, create_pool
from ingest.errors import DependencyUnavailable
from ingest.observability.health import metrics_handler
from ingest.rawlog.publisher import RawPublisher, Sweeper
from ingest.rawlog.s3 import S3Store
from ingest.rawlog.writer import RawLogWriter
from ingest.runtime import settle_heap
from ingest.settings import ReceiverSettings
from services.receiver import imports
from services.receiver.handlers import Receiver, answer_query, post_only, receive, resolve_route
from services.receiver.http import error, metrics_middleware
from services.receiver.partner import add_routes as add_partner_routes
from services.receiver.security import PARSER_FIELD_LIMIT, AuthFailureLog, header_limit_middleware
from services.receiver.store_status import StoreStatusLookup
from services.views.settings import key_base
from services.views.store import ViewReader

log = logging.getLogger(__name__)
RECEIVER = web.AppKey("receiver", Receiver)


async def create_app(settings: ReceiverSettings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[metrics_middleware("receiver"),
                                                                                 header_limit_middleware()])
    pool = await create_pool(settings.dsn, max_size=8)
    store = S3Store(settings)
    publisher = RawPublisher(settings)
    writer = RawLogWriter(store, pool, flush_ms=settings.rawlog_flush_ms, max_batch=settings.rawlog_max_batch,
                          max_bytes=settings.rawlog_max_batch_bytes, on_durable=publisher.publish_durable)
    sweeper = Sweeper(pool, store, publisher, interval_s=settings.sweeper_interval_s,
                      grace_s=settings.sweeper_grace_s)
    rx = Receiver(settings=settings, pool=pool, writer=writer, publisher=publisher,
                  box=SecretBox(settings.secrets_key.get_secret_value() if settings.secrets_key else None))
    auth_log = rx.auth_log = AuthFailureLog(pool, publisher.publish_failure)
    rx.store_status = StoreStatusLookup(pool, ViewReader.from_url(
        settings.redis_url, key_base(settings.views_key_prefix, settings.topic_prefix)),
        timeout_s=settings.store_status_timeout_s)
    app[RECEIVER] = rx
    ready_cache: dict[str, float | bool] = {"at": 0.0, "ok": False}

    async def on_startup(app: web.Application) -> None:
        # import every adapter now, not inside the first webhook of each provider (100+ ms each)
        available_providers()
        try:
            await store.ensure_bucket()
        except DependencyUnavailable as exc:
            log.warning("bucket check failed at start: %s", exc.message)
        await writer.start()
        await sweeper.start()
        auth_log.start()

    async def on_cleanup(app: web.Application) -> None:
        await writer.stop()
        await sweeper.stop()
        await auth_log.stop()
        await rx.store_status.close()
        await asyncio.get_running_loop().run_in_executor(None, publisher.close)
        await sweeper.mark_once()
        await pool.close()
        store.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)

    async def webhook(request: web.Request) -> web.Response:
        resolved = resolve_route(request.match_info["kind"], request.match_info["provider"],
                                 request.match_info["tail"])
        if isinstance(resolved, web.Response):
            return resolved
        provider, family = resolved
        return await receive(request, rx, kind=request.match_info["kind"], provider=provider, family=family)

    async def handshake(request: web.Request) -> web.Response:
        kind, provider = request.match_info["kind"], request.match_info["provider"]
        if provider not in ADAPTERS or adapter_class(provider).kind != kind:
            return error(404, "unknown route", f"no {kind} provider {provider[:64]!r}")
        if not isinstance(resolve_route(kind, provider, request.match_info["tail"]), web.Response):
            return await post_only(request, rx)  # a webhook route: vendors POST to it, there is nothing to GET
        return await answer_query(request, rx, kind=kind, provider=provider, tail=request.match_info["tail"])

    async def other_method(request: web.Request) -> web.Response:
        """PUT, DELETE, … on a webhook path: 405 naming POST where the route exists, else its 404."""
        resolved = resolve_route(request.match_info["kind"], request.match_info["provider"],
                                 request.match_info["tail"])
        return resolved if isinstance(resolved, web.Response) else await post_only(request, rx)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        if loop.time() - float(ready_cache["at"]) > 1.0:
            try:
                await pool.fetchval("SELECT 1")
                await store.ping()
                ready_cache["ok"] = True
            except (DependencyUnavailable, *PG_OUTAGE):
                ready_cache["ok"] = False
            ready_cache["at"] = loop.time()
        ok = bool(ready_cache["ok"])
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    imports.register(app, rx, store)  # before the generic route, so the streamed import wins
    app.router.add_post("/v1/integrations/{kind:pos|erp|seller|partner}/{provider}/{tail:.+}", webhook)
    app.router.add_get("/v1/integrations/{kind:pos|erp|seller}/{provider}/{tail:.+}", handshake)
    app.router.add_route("*", "/v1/integrations/{kind}/{provider}/{tail:.+}", other_method)
    add_partner_routes(app, rx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


async def main() -> None:
    settings = ReceiverSettings()
    app = await create_app(settings)
    # parser limits above the header_limit_middleware's, so an oversized header gets the error envelope
    runner = web.AppRunner(app, access_log=None, handle_signals=True, max_field_size=PARSER_FIELD_LIMIT,
                           max_line_size=PARSER_FIELD_LIMIT)
    await runner.setup()
    # everything built so far (modules, adapters, boto3, pydantic models: ~136,000 tracked objects, 80 ms per full
    # collection here) lives as long as the process: out of the collector's sight, and a young generation larger
    # than what 256 requests in flight keep alive (GC was ~14 % + 7.8 % of the receiver's CPU: docs/performance.md)
    settle_heap()
    await web.TCPSite(runner, settings.receiver_host, settings.receiver_port, backlog=1024).start()
    log.info("receiver listening on %s:%d", settings.receiver_host, settings.receiver_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
