"""HTTP edges shared by the receiver, support and views: the error envelope, tenants from Host, redaction."""
from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ingest.observability import metrics

SENSITIVE_HINTS = ("signature", "hmac", "authorization", "token", "secret", "api-key", "apikey", "password",
                   "cookie", "x-api-key")
REDACTED = "[redacted]"


def error(status: int, message: str, details: str = "", *, headers: Mapping[str, str] | None = None
          ) -> web.Response:
    """The contract's error envelope."""
    return web.json_response({"error": {"code": status, "message": message, "details": details or message}},
                             status=status, headers=headers)


@functools.lru_cache(maxsize=4096)
def _sensitive(name: str) -> bool:
    # cached per header name: senders repeat the same few names, and the scan was ~5% of the receiver's CPU
    lower = name.lower()
    return any(h in lower for h in SENSITIVE_HINTS)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Every header kept (names as sent), credentials and signatures replaced."""
    out = {}
    for k, v in headers.items():
        name = str(k)  # aiohttp's istr is not a plain str
        out[name] = REDACTED if _sensitive(name) else str(v)
    return out


def tenant_of(host: str | None, base_domain: str) -> str | None:
    """``acme.localhost:8080`` under ``localhost`` → ``acme``; anything else → None."""
    if not host:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    if name.endswith("."):  # an absolute name (``acme.localhost.``) is the same host
        name = name[:-1]
    suffix = "." + base_domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    if not label or "." in label:
        return None
    return label


def metrics_middleware(service: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    cached: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = http_exception(request, exc)
        key = (route, request.method, response.status)
        children = cached.get(key)
        if children is None:  # labels() takes a lock and builds its key on every call: once per label set
            children = cached[key] = (metrics.HTTP_REQUESTS.labels(service, route, request.method,
                                                                     str(response.status)),
                                      metrics.HTTP_DURATION.labels(service, route))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)
        return response

    return middleware


def http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    """An ``HTTPException`` in the envelope; the router's own (no route, method not allowed) saying what was
    wrong, where aiohttp's text is only "404: Not Found"."""
    path = request.path[:200]
    if getattr(request.match_info, "http_exception", None) is exc:
        if exc.status == 404:
            return error(404, "unknown route", f"no route {request.method} {path!r}")
        if exc.status == 405:
            allow = exc.headers.get("Allow", "")
            return error(405, "method not allowed", f"{request.method} is not allowed on {path!r}; use {allow}",
                         headers={"Allow": allow})
    response = error(exc.status, exc.reason or "error", exc.text or "")
    if exc.status == 405:
        response.headers["Allow"] = exc.headers.get("Allow", "")
    return response


def json_body_error(exc: Exception) -> web.Response:
    return error(400, "invalid JSON", str(exc)[:300])


def jsonable(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
