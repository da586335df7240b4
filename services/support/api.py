"""The JSON API (``/api/v1``): payloads, failures, mappings, replay jobs, users, retention."""
from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from ingest import feeds
from ingest.db import repositories
from ingest.rawlog.publisher import read_body

from services.receiver.http import error
from services.support import queries
from services.support.auth import User, create_user
from services.support.core import Support
from services.support.filters import FilterError, PayloadFilter, parse_time
from services.support.jobs import cancel_job, create_job, estimate, get_job, list_jobs
from services.support.retention import apply_configured as apply_retention

SUPPORT = web.AppKey("support", Support)
USER = "support_user"


def ok(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, default=lambda x: str(queries.iso(x))))


def user_of(request: web.Request) -> User:
    return request[USER]  # type: ignore[no-any-return]


async def body_json(request: web.Request) -> dict[str, Any]:
    try:
        value = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return value


def _uuid(text: str, what: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise web.HTTPNotFound(text=f"no such {what}: {text}") from exc


def filter_from(values: Any) -> PayloadFilter:
    try:
        return PayloadFilter.from_query(values)
    except FilterError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc


async def payloads(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    filt = filter_from(request.query)
    before = None
    if request.query.get("before"):
        at, _, rid = request.query["before"].partition("|")
        try:
            before = (parse_time(at), str(uuid.UUID(rid)))
        except (FilterError, ValueError) as exc:
            raise web.HTTPBadRequest(text="before must be the `next` cursor of a previous page") from exc
    limit = int(request.query.get("limit", "50")) if request.query.get("limit", "50").isdigit() else 50
    return ok({**await queries.list_payloads(s.pool, filt, limit=limit, before=before), "filter": filt.to_json()})


async def payload(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    found = await queries.payload(s.pool, s.store, _uuid(request.match_info["raw_id"], "payload"))
    if found is None:
        return error(404, "not found", f"no payload {request.match_info['raw_id']}")
    return ok(found)


async def payload_body(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    rows = await repositories.load_raw(s.pool, [_uuid(request.match_info["raw_id"], "payload")])
    if not rows:
        return error(404, "not found", f"no payload {request.match_info['raw_id']}")
    return web.Response(body=await read_body(s.store, rows[0]),  # the exact bytes
                        headers={"Content-Type": rows[0].content_type or "application/octet-stream"})


async def imports_list(request: web.Request) -> web.Response:
    """A tenant's bulk imports, newest first: state, rows done / total, commands, failures so far."""
    tenant = request.query.get("tenant")
    if not tenant:
        return error(400, "bad request", "tenant is required")
    try:
        limit = min(max(int(request.query.get("limit", "50")), 1), 500)
    except ValueError:
        return error(400, "bad request", "limit must be an integer")
    return ok({"items": await feeds.list_imports(request.app[SUPPORT].pool, tenant, limit=limit)})


async def import_get(request: web.Request) -> web.Response:
    found = await feeds.import_progress(request.app[SUPPORT].pool, request.match_info["raw_id"])
    return ok(found) if found else error(404, "not found", f"no import {request.match_info['raw_id'][:64]}")


async def failure_groups(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    return ok({"groups": await queries.failure_groups(s.pool, tenant=q.get("tenant") or None,
                                                      provider=q.get("provider") or None, cls=q.get("class") or None,
                                                      include_resolved=q.get("includeResolved") == "true"),
               "missingMappings": await queries.missing_mappings(s.pool, tenant=q.get("tenant") or None,
                                                                 provider=q.get("provider") or None)})


async def resolve(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    body = await body_json(request)
    resolution = body.get("resolution", "resolved")
    if resolution not in ("resolved", "ignored"):
        return error(400, "invalid resolution", "resolution is `resolved` or `ignored`")
    done = await queries.resolve_failure(s.pool, _uuid(request.match_info["failure_id"], "failure"),
                                         resolution=resolution, note=str(body.get("note") or ""),
                                         actor=user_of(request).name, remote=request.remote)
    return ok(done) if done else error(404, "not found", "no such failure")


async def mappings_get(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    if not q.get("tenant"):
        return error(400, "tenant required", "?tenant=T[&provider=P]")
    return ok({"items": await queries.list_mappings(s.pool, q["tenant"], q.get("provider") or None)})


async def mappings_post(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    body = await body_json(request)
    tenant, provider, items = body.get("tenant"), body.get("provider"), body.get("mappings")
    if not tenant or not provider or not isinstance(items, list) or not items:
        return error(400, "invalid mappings", "{tenant, provider, mappings: [{entity, externalId, canonicalId}]}")
    try:
        result = await s.add_mappings(tenant, provider, items, actor=user_of(request).name, remote=request.remote)
    except ValueError as exc:
        return error(400, "invalid mappings", str(exc))
    return ok(result)


async def mappings_import(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    if not q.get("tenant") or not q.get("provider"):
        return error(400, "tenant and provider required", "?tenant=T&provider=P with a CSV body")
    try:
        items = queries.parse_csv(queries.decode_csv(await request.read()))
        result = await s.add_mappings(q["tenant"], q["provider"], items, actor=user_of(request).name,
                                      remote=request.remote, source="csv")
    except ValueError as exc:
        return error(400, "invalid CSV", str(exc))
    return ok(result)


async def mappings_export(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    if not q.get("tenant"):
        return error(400, "tenant required", "?tenant=T[&provider=P]")
    text = await queries.export_csv(s.pool, q["tenant"], q.get("provider") or None)
    name = f"mappings-{q['tenant']}-{q.get('provider') or 'all'}.csv"
    return web.Response(text=text, content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _selection(body: dict[str, Any]) -> tuple[PayloadFilter | None, list[str] | None]:
    if body.get("rawIds"):
        ids = body["rawIds"]
        if not isinstance(ids, list):
            raise web.HTTPBadRequest(text="rawIds must be a list")
        try:
            return None, [str(uuid.UUID(str(i))) for i in ids]
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"not a rawId: {exc}") from exc
    filt = filter_from(body.get("filter") or {})
    if filt.is_empty():
        raise web.HTTPBadRequest(text="a replay needs rawIds or a filter with at least one condition")
    return filt, None


async def replay_estimate(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    filt, ids = _selection(await body_json(request))
    count = await estimate(s.pool, filt) if filt else len(ids or [])
    rate = s.settings.replay_rate_per_s
    return ok({"count": count, "ratePerS": rate, "seconds": round(count / rate, 1)})


async def replay_start(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    body = await body_json(request)
    filt, ids = _selection(body)
    try:
        rate = float(body.get("ratePerS") or s.settings.replay_rate_per_s)
        job = await create_job(s.pool, actor=user_of(request).name, rate_per_s=rate, filt=filt, raw_ids=ids,
                               kind="filter" if filt else "manual")
    except ValueError as exc:
        return error(400, "invalid replay", str(exc))
    return ok(job, status=202)


async def replay_list(request: web.Request) -> web.Response:
    return ok({"items": await list_jobs(request.app[SUPPORT].pool)})


async def replay_get(request: web.Request) -> web.Response:
    job = await get_job(request.app[SUPPORT].pool, _uuid(request.match_info["job_id"], "job"))
    return ok(job) if job else error(404, "not found", "no such replay job")


async def replay_cancel(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    job_id = _uuid(request.match_info["job_id"], "job")
    job = await cancel_job(s.pool, job_id, user_of(request).name)
    if job:
        return ok(job)
    current = await get_job(s.pool, job_id)
    return error(409, "not cancellable", f"job is {current['state']}") if current else \
        error(404, "not found", "no such replay job")


def _admin(request: web.Request) -> None:
    if user_of(request).role != "admin":
        raise web.HTTPForbidden(text="admin only")


async def users_post(request: web.Request) -> web.Response:
    _admin(request)
    body = await body_json(request)
    name, role = str(body.get("name") or "").strip(), body.get("role", "support")
    if not name or role not in ("admin", "support"):
        return error(400, "invalid user", "{name, role: support|admin}")
    s = request.app[SUPPORT]
    try:
        token = await create_user(s.pool, name, role)
    except asyncpg.UniqueViolationError:
        return error(409, "user exists", f"a user named {name!r} exists")
    await repositories.audit(s.pool, user_of(request).name, "support.user.create", target=name,
                             remote_addr=request.remote, details={"role": role})
    return ok({"name": name, "role": role, "token": token}, status=201)


async def whoami(request: web.Request) -> web.Response:
    u = user_of(request)
    return ok({"name": u.name, "role": u.role})


async def retention_apply(request: web.Request) -> web.Response:
    _admin(request)
    s = request.app[SUPPORT]
    report = await apply_retention(s.pool, s.store, s.settings)
    return ok(report)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/whoami", whoami)
    r.add_get("/api/v1/payloads", payloads)
    r.add_get("/api/v1/payloads/{raw_id}", payload)
    r.add_get("/api/v1/payloads/{raw_id}/body", payload_body)
    r.add_get("/api/v1/imports", imports_list)
    r.add_get("/api/v1/imports/{raw_id}", import_get)
    r.add_get("/api/v1/failures/groups", failure_groups)
    r.add_post("/api/v1/failures/{failure_id}/resolve", resolve)
    r.add_get("/api/v1/mappings", mappings_get)
    r.add_post("/api/v1/mappings", mappings_post)
    r.add_post("/api/v1/mappings/import", mappings_import)
    r.add_get("/api/v1/mappings/export", mappings_export)
    r.add_post("/api/v1/replays/estimate", replay_estimate)
    r.add_post("/api/v1/replays", replay_start)
    r.add_get("/api/v1/replays", replay_list)
    r.add_get("/api/v1/replays/{job_id}", replay_get)
    r.add_post("/api/v1/replays/{job_id}/cancel", replay_cancel)
    r.add_post("/api/v1/users", users_post)
    r.add_post("/api/v1/retention/apply", retention_apply)
