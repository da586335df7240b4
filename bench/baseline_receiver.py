"""Bare baseline for the receiver: aiohttp + the same signature check, answering 202 without any I/O."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.adapters.base import ProviderAdapter  # noqa: E402
from ingest.adapters.registry import adapter_class  # noqa: E402
from ingest.errors import InvalidSignature  # noqa: E402
from ingest.loadgen import Mix  # noqa: E402


def create_app(mix: Mix) -> web.Application:
    # one adapter per provider, built once, like the receiver's cached sources
    adapters: dict[str, ProviderAdapter] = {  # type: ignore[type-arg]
        p: adapter_class(p)([mix.secret], options=mix.source_options(p)) for p in mix.providers}

    async def webhook(request: web.Request) -> web.Response:
        adapter = adapters.get(request.match_info["provider"])
        if adapter is None or "." not in request.host:
            return web.json_response({"error": {"code": 404, "message": "unknown", "details": ""}}, status=404)
        body = await request.read()
        try:
            adapter.verify_signature(request.headers, body)
        except InvalidSignature:
            return web.json_response({"error": {"code": 401, "message": "unauthorized", "details": ""}}, status=401)
        return web.json_response({"rawId": str(uuid.uuid4()), "status": "accepted"}, status=202)

    app = web.Application()
    app.router.add_post("/v1/integrations/{kind}/{provider}/{tail:.+}", webhook)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(create_app(Mix()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("baseline ready", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()  # the receiver runs on uvloop too (pos-ingest run)
    except ImportError:
        pass
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
