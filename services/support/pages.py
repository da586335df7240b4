"""The dashboard: server-rendered HTML pages (escaped everywhere) over the same queries as the API."""
from __future__ import annotations

import json
import uuid
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from services.support import queries
from services.support.api import SUPPORT, user_of
from services.support.auth import COOKIE
from services.support.filters import CLASSES, STATUSES, FilterError, PayloadFilter
from services.support.jobs import cancel_job, create_job, estimate, get_job, list_jobs

NAV = (("payloads", "/payloads", "Payloads"), ("failures", "/failures", "Failures"),
       ("mappings", "/mappings", "Mappings"), ("replays", "/replays", "Replays"))


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def page(title: str, active: str, body: str, *, user: str = "", msg: str = "", err: str = "") -> web.Response:
    nav = "".join(f'<a href="{href}" class="{"on" if key == active else ""}">{label}</a>' for key, href, label in NAV)
    who = f'<span class="who">{e(user)} · <a href="/logout">log out</a></span>' if user else ""
    notes = (f'<div class="msg" id="msg">{e(msg)}</div>' if msg else "") + \
            (f'<div class="msg err" id="err">{e(err)}</div>' if err else "")
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>{e(title)} · pos-ingest support</title>'
            f'<link rel="stylesheet" href="/static/app.css"></head><body><header><strong>pos-ingest support</strong>'
            f'{nav}{who}</header><main><h1>{e(title)}</h1>{notes}{body}</main>'
            f'<script src="/static/app.js"></script></body></html>')
    return web.Response(text=html, content_type="text/html")


def badge(text: Any, cls: str = "") -> str:
    return f'<span class="badge {cls}">{e(text)}</span>'


def _select(name: str, options: tuple[str, ...], value: str | None) -> str:
    opts = "".join(f'<option value="{o}"{" selected" if o == value else ""}>{o or "any"}</option>'
                   for o in ("",) + options)
    return f'<select name="{name}">{opts}</select>'


def filter_form(f: PayloadFilter, q: Any) -> str:
    def field(name: str, label: str, value: Any, size: int = 12) -> str:
        return f'<label>{label}<input name="{name}" value="{e(value)}" size="{size}"></label>'

    return ('<form class="filters" method="get" action="/payloads">'
            + field("tenant", "Tenant", f.tenant) + field("provider", "Provider", f.provider)
            + f'<label>Status{_select("status", STATUSES, f.status)}</label>'
            + f'<label>Failure class{_select("class", CLASSES, f.cls)}</label>'
            + field("reason", "Reason code", f.reason, 16)
            + field("since", "Since", q.get("since", ""), 14) + field("until", "Until", q.get("until", ""), 14)
            + field("rawId", "rawId", f.raw_id, 20) + field("externalId", "External id", f.external_id)
            + field("field", "JSON path", f.field, 14) + field("value", "= value", f.value)
            + f'<label>Unresolved<input type="checkbox" name="unresolved" value="true"'
              f'{" checked" if f.unresolved else ""}></label>'
            + '<button type="submit" id="apply-filter">Filter</button></form>')


def hidden(values: dict[str, str]) -> str:
    return "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in values.items())


async def payloads_page(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    try:
        f = PayloadFilter.from_query(q)
    except FilterError as exc:
        return page("Payloads", "payloads", filter_form(PayloadFilter(), {}), user=user_of(request).name,
                    err=str(exc))
    res = await queries.list_payloads(s.pool, f, limit=100)
    rows = "".join(
        f'<tr data-raw="{e(p["rawId"])}"><td class="mono"><a href="/payloads/{e(p["rawId"])}">{e(p["rawId"])}</a></td>'
        f'<td>{e(p["receivedAt"])}</td><td>{e(p["tenantId"])}</td><td>{e(p["provider"])}</td><td>{e(p["family"])}</td>'
        f'<td>{e(p["size"])}</td><td>{badge(p["status"], "s-" + p["status"])} {e(p["statusStage"] or "")}</td>'
        f'<td>{e(p["lastFailure"]["class"] + " / " + p["lastFailure"]["reasonCode"]) if p["lastFailure"] else ""}'
        f'</td></tr>' for p in res["items"])
    more = ""
    if res["next"]:
        more = f'<p class="muted">Showing the newest {len(res["items"])}; narrow the filter to see older ones.</p>'
    replay = ""
    if not f.is_empty():
        replay = (f'<form method="post" action="/replays/new" style="margin:10px 0">{hidden(f.query_string())}'
                  f'<button type="submit" id="replay-matching">Replay everything this filter matches…</button></form>')
    body = (filter_form(f, q) + replay + '<table id="payloads"><tr><th>rawId</th><th>Received</th><th>Tenant</th>'
            '<th>Provider</th><th>Family</th><th>Bytes</th><th>Status</th><th>Last failure</th></tr>'
            f'{rows or "<tr><td colspan=8 class=muted>no payloads match</td></tr>"}</table>{more}')
    return page("Payloads", "payloads", body, user=user_of(request).name, msg=q.get("msg", ""),
                err=q.get("err", ""))


def trail_html(attempt: dict[str, Any]) -> str:
    steps = ['<span class="step st-ok">received</span>']
    details = []
    for st in attempt["steps"]:
        state = st["state"]
        steps.append(f'<span class="step st-{state.replace(" ", "-")}" title="{e(st["stage"])}">{e(st["label"])}: '
                     f'{e(state)}</span>')
        if state == "failed":
            details.append(f'<p><b>{e(st["stage"])}</b> failed: {badge(st["class"], "s-failed")} '
                           f'<code>{e(st["reasonCode"])}</code> — {e(st["message"])}</p>')
        for c in st.get("commands") or []:
            details.append(f'<div class="mono">{e(c["commandType"])} {e(c["commandId"])} → {e(c["topic"])}</div>')
        if state == "skipped":
            details.append(f'<p>skipped at {e(st["stage"])}: {e(st.get("reason"))}</p>')
    head = "Original delivery" if not attempt["replayId"] else \
        f'Replay <span class="mono">{e(attempt["replayId"])}</span> by {e(attempt["actor"])} at {e(attempt["at"])}'
    return f'<div class="attempt"><h3>{head}</h3><div class="trail">{"".join(steps)}</div>{"".join(details)}</div>'


async def payload_page(request: web.Request) -> web.Response:
    s = request.app[SUPPORT]
    try:
        raw_id = str(uuid.UUID(request.match_info["raw_id"]))
    except ValueError:
        raw_id = None
    p = await queries.payload(s.pool, s.store, raw_id) if raw_id else None
    if p is None:
        return page("Payload not found", "payloads", "<p>No such payload.</p>", user=user_of(request).name)
    headers = "".join(f"<tr><td>{e(k)}</td><td class=mono>{e(v)}</td></tr>" for k, v in p["headers"].items())
    failures = "".join(
        f'<tr><td>{e(f["occurredAt"])}</td><td>{badge(f["class"], "s-failed")}</td><td>{e(f["stage"])}</td>'
        f'<td><code>{e(f["reasonCode"])}</code></td><td>{e(f["message"])}</td><td class="mono">{e(f["replayId"] or "")}'
        f'</td><td>{badge(f["resolution"]) + " " + e(f["resolutionNote"] or "") if f["resolvedAt"] else _resolve_form(f)}'
        f'</td></tr>' for f in p["failures"])
    history = "".join(f'<tr><td>{e(h["at"])}</td><td>{e(h["actor"])}</td><td>{e(h["action"])}</td>'
                      f'<td class="mono">{e(json.dumps(h["details"]))}</td></tr>' for h in p["history"])
    in_flight = any(st["state"] == "pending" for st in p["trail"][-1]["steps"])
    body = (f'<p>{badge(p["status"], "s-" + p["status"])} <b>{e(p["tenantId"])}</b> · {e(p["provider"])} · '
            f'{e(p["family"])} · <span class="mono">{e(p["route"])}</span> · received {e(p["receivedAt"])} · '
            f'{e(p["size"])} bytes · sha256 <span class="mono">{e(p["sha256"][:16])}…</span></p>'
            f'<form method="post" action="/replays/start" style="margin:8px 0">{hidden({"rawIds": p["rawId"]})}'
            f'<button type="submit" id="replay-one">Replay this payload</button></form>'
            f'<h2>Trail</h2><div id="trail"{" data-refresh=1500" if in_flight else ""}>'
            f'{"".join(trail_html(a) for a in p["trail"])}</div>'
            f'<h2>Failures</h2><table id="failures"><tr><th>When</th><th>Class</th><th>Stage</th><th>Reason</th>'
            f'<th>Message</th><th>Replay</th><th>Resolution</th></tr>{failures or "<tr><td colspan=7>none</td></tr>"}'
            f'</table><div class="grid"><div><h2>Headers (secrets redacted at receipt)</h2><table>{headers}</table>'
            f'</div><div><h2>Body <a class="muted" href="/api/v1/payloads/{e(p["rawId"])}/body">(exact bytes)</a></h2>'
            f'<pre id="body">{e(p["bodyPretty"] or p["body"])}</pre></div></div>'
            f'<h2>History</h2><table id="history"><tr><th>At</th><th>Actor</th><th>Action</th><th>Details</th></tr>'
            f'{history or "<tr><td colspan=4>no manual action yet</td></tr>"}</table>')
    return page(f"Payload {p['rawId']}", "payloads", body, user=user_of(request).name,
                msg=request.query.get("msg", ""))


def _resolve_form(f: dict[str, Any]) -> str:
    return (f'<form method="post" action="/failures/{e(f["failureId"])}/resolve" class="resolve">'
            f'<input name="note" placeholder="note" size="14"> <button name="resolution" value="resolved">Resolve'
            f'</button> <button class="secondary" name="resolution" value="ignored">Ignore</button></form>')


async def failures_page(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    tenant, provider = q.get("tenant") or None, q.get("provider") or None
    groups = await queries.failure_groups(s.pool, tenant=tenant, provider=provider, cls=q.get("class") or None)
    missing = await queries.missing_mappings(s.pool, tenant=tenant, provider=provider)

    def link(g: dict[str, Any]) -> str:
        return "/payloads?" + urlencode({"tenant": g["tenantId"] or "", "provider": g["provider"] or "",
                                         "class": g["class"], "reason": g["reasonCode"], "unresolved": "true"})

    grows = "".join(
        f'<tr><td>{badge(g["class"], "s-failed")}</td><td><code>{e(g["reasonCode"])}</code></td>'
        f'<td>{e(g["tenantId"])}</td><td>{e(g["provider"])}</td><td><a href="{e(link(g))}" class="group-link">'
        f'{e(g["payloads"])} payloads</a></td><td>{e(g["failures"])}</td><td>{e(g["firstSeen"])}</td>'
        f'<td>{e(g["lastSeen"])}</td><td>{e((g["sample"] or "")[:140])}</td></tr>' for g in groups)
    mrows = "".join(
        f'<tr data-missing="{e(m["entity"])}:{e(m["externalId"])}"><td>{e(m["tenantId"])}</td><td>{e(m["provider"])}'
        f'</td><td>{e(m["entity"])}</td><td class="mono">{e(m["externalId"])}</td><td>{e(m["payloads"])}</td>'
        f'<td><form method="post" action="/mappings/add" class="fix">'
        + hidden({"tenant": m["tenantId"], "provider": m["provider"], "entity": m["entity"],
                  "externalId": m["externalId"], "back": "/failures"})
        + '<input name="canonicalId" placeholder="canonical id" required size="18"> '
          '<button type="submit">Add mapping</button></form></td></tr>' for m in missing)
    filt = ('<form class="filters" method="get"><label>Tenant<input name="tenant" value="' + e(tenant) + '"></label>'
            '<label>Provider<input name="provider" value="' + e(provider) + '"></label>'
            f'<label>Class{_select("class", CLASSES, q.get("class"))}</label><button>Filter</button></form>')
    body = (filt + '<h2>Unresolved failures by class and reason</h2><table id="groups"><tr><th>Class</th>'
            '<th>Reason</th><th>Tenant</th><th>Provider</th><th>Payloads</th><th>Failures</th><th>First seen</th>'
            f'<th>Last seen</th><th>Latest message</th></tr>{grows or "<tr><td colspan=9>no unresolved failures</td></tr>"}'
            '</table><h2>Missing mappings</h2><p class="muted">Adding a mapping re-drives every payload that failed '
            'only for mappings that now exist.</p><table id="missing"><tr><th>Tenant</th><th>Provider</th>'
            f'<th>Entity</th><th>External id</th><th>Payloads</th><th>Fix</th></tr>'
            f'{mrows or "<tr><td colspan=6>none</td></tr>"}</table>')
    return page("Failures", "failures", body, user=user_of(request).name, msg=q.get("msg", ""),
                err=q.get("err", ""))


async def mappings_page(request: web.Request) -> web.Response:
    s, q = request.app[SUPPORT], request.query
    tenant, provider = q.get("tenant") or "", q.get("provider") or ""
    rows = await queries.list_mappings(s.pool, tenant, provider or None, limit=500) if tenant else []
    trs = "".join(f'<tr><td>{e(m["provider"])}</td><td>{e(m["entity"])}</td><td class="mono">{e(m["externalId"])}'
                  f'</td><td class="mono">{e(m["canonicalId"])}</td><td>{"auto" if m["autoCreated"] else ""}</td>'
                  f'<td>{e(m["updatedAt"])}</td></tr>' for m in rows)
    sel = ('<form class="filters" method="get"><label>Tenant<input name="tenant" value="' + e(tenant) + '" required>'
           '</label><label>Provider<input name="provider" value="' + e(provider) + '"></label><button>Show</button>'
           + (f' <a href="/api/v1/mappings/export?{e(urlencode({"tenant": tenant, "provider": provider}))}" '
              f'id="export">Export CSV</a>' if tenant else "") + '</form>')
    add = ""
    if tenant:
        ctx = hidden({"tenant": tenant, "back": "/mappings?" + urlencode({"tenant": tenant, "provider": provider})})
        add = ('<div class="grid"><div><h2>Add a mapping</h2><form method="post" action="/mappings/add" '
               f'class="filters">{ctx}<label>Provider<input name="provider" value="{e(provider)}" required></label>'
               f'<label>Entity{_select("entity", ("merchant", "store", "item", "variant"), "item")}</label>'
               '<label>External id<input name="externalId" required></label><label>Canonical id'
               '<input name="canonicalId" required></label><button>Add</button></form></div>'
               '<div><h2>Import CSV</h2><form method="post" action="/mappings/import" enctype="multipart/form-data" '
               f'class="filters">{ctx}<label>Provider<input name="provider" value="{e(provider)}" required></label>'
               '<label>File (entity,external_id,canonical_id)<input type="file" name="file" accept=".csv,text/csv">'
               '</label><label>or paste<textarea name="text" rows="3" cols="40"></textarea></label>'
               '<button>Import</button></form></div></div>')
    body = (sel + add + '<h2>Mappings</h2><table id="mappings"><tr><th>Provider</th><th>Entity</th><th>External id</th>'
            f'<th>Canonical id</th><th></th><th>Updated</th></tr>'
            f'{trs or "<tr><td colspan=6>choose a tenant</td></tr>"}</table>')
    return page("Mappings", "mappings", body, user=user_of(request).name, msg=q.get("msg", ""), err=q.get("err", ""))


def _redirect(back: str, **params: str) -> web.HTTPFound:
    back = back if back.startswith("/") and not back.startswith("//") else "/"
    sep = "&" if "?" in back else "?"
    return web.HTTPFound(back + sep + urlencode(params))


def _redrive_text(result: dict[str, Any]) -> str:
    job = result["redrive"]["job"]
    return (f"{result['upserted']} mapping(s) saved; {result['redrive']['resolved']} failure(s) resolved"
            + (f", {job['total']} payload(s) re-driven (job {job['jobId']})" if job else ""))


async def mappings_add(request: web.Request) -> web.Response:
    s, form = request.app[SUPPORT], await request.post()
    back = str(form.get("back") or "/failures")
    item = {"entity": form.get("entity"), "externalId": form.get("externalId"), "canonicalId": form.get("canonicalId")}
    try:
        result = await s.add_mappings(str(form.get("tenant") or ""), str(form.get("provider") or ""), [item],
                                      actor=user_of(request).name, remote=request.remote)
    except ValueError as exc:
        raise _redirect(back, err=str(exc)) from exc
    raise _redirect(back, msg=_redrive_text(result))


async def mappings_import(request: web.Request) -> web.Response:
    s, form = request.app[SUPPORT], await request.post()
    back = str(form.get("back") or "/mappings")
    upload = form.get("file")
    try:
        text = queries.decode_csv(upload.file.read()) if isinstance(upload, web.FileField) else ""
        text = text or str(form.get("text") or "")
        result = await s.add_mappings(str(form.get("tenant") or ""), str(form.get("provider") or ""),
                                      queries.parse_csv(text), actor=user_of(request).name, remote=request.remote,
                                      source="csv")
    except ValueError as exc:
        raise _redirect(back, err=str(exc)) from exc
    raise _redirect(back, msg=_redrive_text(result))


async def resolve_post(request: web.Request) -> web.Response:
    s, form = request.app[SUPPORT], await request.post()
    resolution = "ignored" if form.get("resolution") == "ignored" else "resolved"
    try:
        failure_id = str(uuid.UUID(request.match_info["failure_id"]))
    except ValueError as exc:
        raise web.HTTPNotFound(text="no such failure") from exc
    done = await queries.resolve_failure(s.pool, failure_id, resolution=resolution, note=str(form.get("note") or ""),
                                         actor=user_of(request).name, remote=request.remote)
    if not done:
        raise web.HTTPNotFound(text="no such failure")
    raise _redirect(f"/payloads/{done['rawId']}" if done["rawId"] else "/failures", msg=f"failure {resolution}")


def _job_row(j: dict[str, Any]) -> str:
    cancel = (f'<form method="post" action="/replays/{e(j["jobId"])}/cancel" class="cancel" style="display:inline">'
              f'<button class="danger">Cancel</button></form>') if j["state"] in ("pending", "running") else ""
    return (f'<tr data-job="{e(j["jobId"])}" data-state="{e(j["state"])}"><td class="mono"><a href="/replays/'
            f'{e(j["jobId"])}">{e(j["jobId"][:8])}</a></td><td>{e(j["kind"])}</td><td>{e(j["createdBy"])}</td>'
            f'<td>{e(j["createdAt"])}</td><td class="mono">{e(json.dumps(j["filter"]))}</td><td>{e(j["ratePerS"])}/s</td>'
            f'<td><span class="progress"><div style="width:{round(j["progress"] * 100)}%"></div></span> '
            f'<span class="job-text">{e(j["handled"])} / {e(j["total"])} ({e(j["state"])})</span> {cancel}</td></tr>')


JOBS_HEAD = ('<table id="jobs"><tr><th>Job</th><th>Kind</th><th>By</th><th>Created</th><th>Selection</th><th>Rate</th>'
             '<th>Progress</th></tr>')


async def replays_page(request: web.Request) -> web.Response:
    jobs = await list_jobs(request.app[SUPPORT].pool)
    body = JOBS_HEAD + ("".join(_job_row(j) for j in jobs) or "<tr><td colspan=7>no replay yet</td></tr>") + "</table>"
    return page("Replay jobs", "replays", body, user=user_of(request).name, msg=request.query.get("msg", ""))


async def replay_page(request: web.Request) -> web.Response:
    try:
        job = await get_job(request.app[SUPPORT].pool, str(uuid.UUID(request.match_info["job_id"])))
    except ValueError:
        job = None
    if job is None:
        return page("Replay job not found", "replays", "<p>No such job.</p>", user=user_of(request).name)
    payloads = "/payloads?" + urlencode(job["filter"]) if "rawIds" not in job["filter"] else ""
    body = (JOBS_HEAD + _job_row(job) + "</table>"
            + (f'<p><a href="{e(payloads)}">The payloads it replays</a></p>' if payloads else ""))
    return page(f"Replay job {job['jobId']}", "replays", body, user=user_of(request).name,
                msg=request.query.get("msg", ""))


async def replay_new(request: web.Request) -> web.Response:
    """Estimate first: the count of everything the filter matches, and how long the throttle makes it take."""
    s, form = request.app[SUPPORT], await request.post()
    try:
        f = PayloadFilter.from_query(form)
    except FilterError as exc:
        raise _redirect("/payloads", err=str(exc)) from exc
    count, rate = await estimate(s.pool, f), s.settings.replay_rate_per_s
    body = (f'<p id="estimate">This filter matches <b>{count}</b> payload(s) (every page, not just the visible one).'
            f' At {e(rate)} payloads/s the replay takes about {e(round(count / rate, 1))} s.</p>'
            f'<p class="mono">{e(json.dumps(f.to_json()))}</p>'
            f'<form method="post" action="/replays/start">{hidden(f.query_string())}<label>Rate (payloads/s) '
            f'<input name="ratePerS" value="{e(rate)}" size="6"></label> <button id="start-replay">Start replay of '
            f'{count}</button></form>')
    return page("Replay: estimate", "replays", body, user=user_of(request).name)


async def replay_start(request: web.Request) -> web.Response:
    s, form = request.app[SUPPORT], await request.post()
    try:
        rate = float(str(form.get("ratePerS") or s.settings.replay_rate_per_s))
        if form.get("rawIds"):
            ids = [str(uuid.UUID(x)) for x in str(form["rawIds"]).replace(",", " ").split()]
            job = await create_job(s.pool, actor=user_of(request).name, rate_per_s=rate, raw_ids=ids, kind="manual")
        else:
            f = PayloadFilter.from_query(form)
            if f.is_empty():
                raise FilterError("a filtered replay needs at least one condition")
            job = await create_job(s.pool, actor=user_of(request).name, rate_per_s=rate, filt=f, kind="filter")
    except ValueError as exc:  # FilterError included
        raise _redirect("/payloads", err=str(exc)) from exc
    raise web.HTTPFound(f"/replays/{job['jobId']}")


async def replay_cancel(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    try:
        await cancel_job(request.app[SUPPORT].pool, str(uuid.UUID(job_id)), user_of(request).name)
    except ValueError as exc:
        raise web.HTTPNotFound(text="no such job") from exc
    raise web.HTTPFound(f"/replays/{job_id}")


async def login_page(request: web.Request) -> web.Response:
    body = ('<form method="post" action="/login" class="filters"><label>Support token'
            '<input type="password" name="token" size="40" autofocus></label><button id="login">Log in</button></form>')
    return page("Log in", "", body, err=request.query.get("err", ""))


async def login_post(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token") or "")
    if await request.app[SUPPORT].auth.user(token) is None:
        raise web.HTTPFound("/login?err=" + "unknown+or+revoked+token")
    resp = web.Response(status=302, headers={"Location": "/payloads"})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=12 * 3600, path="/")
    return resp


async def logout(request: web.Request) -> web.Response:
    resp = web.Response(status=302, headers={"Location": "/login"})
    resp.del_cookie(COOKIE, path="/")
    return resp


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", login_page)
    r.add_post("/login", login_post)
    r.add_get("/logout", logout)
    r.add_get("/", lambda request: _root())
    r.add_get("/payloads", payloads_page)
    r.add_get("/payloads/{raw_id}", payload_page)
    r.add_get("/failures", failures_page)
    r.add_post("/failures/{failure_id}/resolve", resolve_post)
    r.add_get("/mappings", mappings_page)
    r.add_post("/mappings/add", mappings_add)
    r.add_post("/mappings/import", mappings_import)
    r.add_get("/replays", replays_page)
    r.add_post("/replays/new", replay_new)
    r.add_post("/replays/start", replay_start)
    r.add_get("/replays/{job_id}", replay_page)
    r.add_post("/replays/{job_id}/cancel", replay_cancel)


async def _root() -> web.Response:
    raise web.HTTPFound("/payloads")
