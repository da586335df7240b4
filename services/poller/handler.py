"""Pure planning: which requests a pull makes, how pages are followed, windows advanced and runs rescheduled."""
from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from ingest.adapters.vinculum.adapter import LOCATION_HEADER, form_request, header_request, request_window

#: providers the poller can pull, and the adapter kind their documents are stored under
PULL_KINDS = {"lightspeed": "pos", "revel": "pos", "atlas": "pos", "vinculum": "erp", "unicommerce": "erp"}
#: providers whose webhooks may ask for a pull (the adapter's parsed source exposes ``refetch``)
NOTIFYING = frozenset({"revel", "atlas"})


class PlanError(ValueError):
    """A poll source whose options cannot produce a request (refused at ``poll add``, failed at run)."""


@dataclass(frozen=True)
class PollSource:
    poll_id: int
    tenant_id: str
    provider: str
    base_url: str
    auth_kind: str
    options: Mapping[str, Any]
    interval_s: int
    state: Mapping[str, Any] = field(default_factory=dict)
    consecutive_failures: int = 0


@dataclass(frozen=True)
class Fetch:
    """One HTTP call. ``store``: the response is a document for the raw log (a list call is not)."""

    endpoint: str
    method: str
    url: str
    family: str
    headers: Mapping[str, str] = field(default_factory=dict)  # non-secret request headers
    body: bytes | None = None
    secret_headers: Mapping[str, str] = field(default_factory=dict)  # Vinculum v4 credentials: never stored
    doc_headers: Mapping[str, str] = field(default_factory=dict)  # stored with the document
    store: bool = True
    page: int = 1
    request: Mapping[str, Any] | None = None  # the JSON request body, to build the next page from
    cursor: str | None = None  # window key this fetch belongs to


@dataclass(frozen=True)
class Plan:
    fetches: list[Fetch]
    windows: dict[str, str]  # window key → ISO end, committed only when every page of the run succeeded
    refetched: list[str]  # notification refetches this run consumes


# --- windows -------------------------------------------------------------------------------------------
def window(state: Mapping[str, Any], key: str, now: datetime, *, overlap_s: int, lookback_s: int
           ) -> tuple[datetime, datetime]:
    """``[last_end − overlap, now]``: windows overlap on purpose, the dedupe stage absorbs the repeats."""
    last = (state.get("windows") or {}).get(key)
    start = datetime.fromisoformat(last) - timedelta(seconds=overlap_s) if last else now - timedelta(
        seconds=lookback_s)
    return start, now


def _int(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"option {name} must be an integer, not {value!r}") from exc


def _list(options: Mapping[str, Any], name: str, *, required: bool = False) -> list[str]:
    value = options.get(name) or []
    items = [str(v) for v in (value if isinstance(value, list) else str(value).split(","))]
    if required and not items:
        raise PlanError(f"option {name} is required (a list)")
    return items


def _url(base: str, path: str, query: Mapping[str, Any] | None = None) -> str:
    url = f"{base.rstrip('/')}/{path.lstrip('/')}"
    return f"{url}?{urlencode(query)}" if query else url


# --- per provider --------------------------------------------------------------------------------------
def _lightspeed(src: PollSource) -> list[Fetch]:
    """Menus have no webhook: list each location's menus (or take ``menu_ids``), then load each one."""
    out = []
    profile = src.options.get("account_profile")
    for loc in _list(src.options, "business_locations", required=True):
        doc = {"X-Business-Location-Id": loc}
        menu_ids = _list(src.options, "menu_ids")
        if menu_ids:
            out += [_lightspeed_load(src, loc, m, profile) for m in menu_ids]
        else:
            out.append(Fetch("menu/list", "GET", _url(src.base_url, "/o/op/1/menu/list", {"businessLocationId": loc}),
                             "menu", doc_headers=doc, store=False))
    return out


def _lightspeed_load(src: PollSource, loc: str, menu_id: str, profile: Any) -> Fetch:
    query: dict[str, Any] = {"businessLocationId": loc}
    if profile:
        query["accountProfile"] = profile
    return Fetch("menu/load", "GET", _url(src.base_url, f"/o/op/1/menu/load/{menu_id}", query), "menu",
                 doc_headers={"X-Business-Location-Id": loc})


def _revel(src: PollSource, establishments: list[str] | None = None) -> list[Fetch]:
    instance = src.options.get("instance") or (urlsplit(src.base_url).hostname or "").split(".")[0]
    out = []
    for est in establishments or _list(src.options, "establishments", required=True):
        query = {"establishment": est, "format": "json", "limit": _int(src.options, "page_size", 100), "offset": 0}
        out.append(Fetch("Product", "GET", _url(src.base_url, "/resources/Product/", query), "menu",
                         doc_headers={"X-Revel-Establishment-Id": est, "X-Revel-Instance": instance}))
    return out


def _atlas(src: PollSource, menu_ids: list[str] | None = None) -> list[Fetch]:
    merchant = src.options.get("merchant_id")
    headers = {"X-Merchant-Id": str(merchant)} if merchant else {}
    ids = menu_ids if menu_ids is not None else _list(src.options, "menu_ids")
    if ids:
        return [Fetch("menus/get", "GET", _url(src.base_url, f"/admin/v1/menus/{m}"), "menu", headers=headers,
                      doc_headers=headers) for m in ids]
    return [Fetch("menus/list", "GET", _url(src.base_url, "/admin/v1/menus"), "menu", headers=headers,
                  doc_headers=headers, store=False)]


#: Vinculum endpoint → (path under /RestWS/api/eretail, transport, request body builder)
VINCULUM_ENDPOINTS: dict[str, tuple[str, str]] = {
    "inventoryStatus": ("v3/sku/inventoryStatus", "form"),
    "getWhInventory": ("v4/stock/getWhInventory", "json"),
    "adjustmentDetail": ("v3/stock/adjustmentDetail", "form"),
    "skuDetail": ("v1/sku/skuDetail", "form"),
}


def _vinculum_body(endpoint: str, win: dict[str, str], loc: str | None, page: int) -> dict[str, Any]:
    if endpoint == "inventoryStatus":
        body: dict[str, Any] = {"skuCodes": [], **win, "pageNumber": page, "dropShipFlag": "no",
                                "includeNewSKU": "y"}
        if loc:
            body["locCode"] = loc
    elif endpoint == "getWhInventory":
        body = {"skuCodes": [], "buckets": ["Good"], **win, "pageNumber": str(page), "reqType": ""}
        if loc:
            body["locCode"] = loc
    elif endpoint == "adjustmentDetail":
        # date_from/date_to in the same format as fromDate/toDate (INFERRED: the Swagger names, no example)
        body = {"skuCode": [], "date_from": win["fromDate"], "date_to": win["toDate"], "pageNumber": page}
        if loc:
            body["location"] = loc
    else:  # skuDetail, filterBy 1 = updated in the window
        body = {"skuCodes": [], **win, "filterBy": 1, "pageNumber": page}
    return body


def vinculum_fetch(src: PollSource, creds: Mapping[str, Any], endpoint: str, body: dict[str, Any], *,
                   page: int, loc: str | None, cursor: str) -> Fetch:
    path, transport = VINCULUM_ENDPOINTS[endpoint]
    url = _url(src.base_url, path)
    # the polled locCode travels with the document (like Unicommerce's Facility): rows naming none are there
    doc = {"X-Vinculum-Endpoint": endpoint, **({LOCATION_HEADER: loc} if loc else {})}
    if transport == "form":  # v1–v3: ApiOwner/ApiKey travel inside the form body, never in stored headers
        return Fetch(endpoint, "POST", url, endpoint, {"Content-Type": "application/x-www-form-urlencoded"},
                     form_request(str(creds["api_owner"]), str(creds["api_key"]), body), doc_headers=doc,
                     page=page, request=body, cursor=cursor)
    headers, raw = header_request(str(creds["api_owner"]), str(creds["api_key"]), body)
    return Fetch(endpoint, "POST", url, endpoint, {"Content-Type": headers.pop("Content-Type")}, raw,
                 secret_headers=headers, doc_headers=doc, page=page, request=body, cursor=cursor)


def _vinculum(src: PollSource, creds: Mapping[str, Any], now: datetime, windows: dict[str, str]) -> list[Fetch]:
    tz = str(src.options.get("timezone") or "Asia/Kolkata")
    out = []
    for endpoint in _list(src.options, "endpoints") or ["inventoryStatus"]:
        if endpoint not in VINCULUM_ENDPOINTS:
            raise PlanError(f"unknown Vinculum endpoint {endpoint!r}; one of: {', '.join(VINCULUM_ENDPOINTS)}")
        for loc in _list(src.options, "locations") or [None]:  # type: ignore[list-item]
            key = f"{endpoint}:{loc or '*'}"
            start, end = window(src.state, key, now, overlap_s=_int(src.options, "overlap_s", 120),
                                lookback_s=_int(src.options, "lookback_s", 3600))
            windows[key] = end.isoformat()
            body = _vinculum_body(endpoint, request_window(start, end, tz), loc, 1)
            out.append(vinculum_fetch(src, creds, endpoint, body, page=1, loc=loc, cursor=key))
    return out


def _unicommerce(src: PollSource, now: datetime, windows: dict[str, str]) -> list[Fetch]:
    """Facility-level inventory snapshot, changed in the last N minutes: N covers the time since the last
    successful pull plus the overlap, capped at Uniware's 1440."""
    out = []
    skus = _list(src.options, "skus")
    for facility in _list(src.options, "facilities", required=True):
        key = f"inventorySnapshot:{facility}"
        start, end = window(src.state, key, now, overlap_s=_int(src.options, "overlap_s", 120),
                            lookback_s=_int(src.options, "lookback_s", 1440 * 60))
        minutes = max(1, min(1440, math.ceil((end - start).total_seconds() / 60)))
        windows[key] = end.isoformat()
        request: dict[str, Any] = {"updatedSinceInMinutes": minutes}
        if skus:
            request["itemTypeSKUs"] = skus
        out.append(Fetch("inventorySnapshot", "POST",
                         _url(src.base_url, "/services/rest/v1/inventory/inventorySnapshot/get"),
                         "inventorySnapshot", {"Content-Type": "application/json", "Facility": facility},
                         json.dumps(request, separators=(",", ":")).encode(), doc_headers={"Facility": facility},
                         request=request, cursor=key))
    return out


def plan(src: PollSource, creds: Mapping[str, Any], now: datetime) -> Plan:
    """Every first request of one run: pending notification refetches only, else the scheduled pull."""
    refetch = [str(r) for r in (src.state.get("refetch") or [])]
    if refetch and src.provider in NOTIFYING:
        return Plan([f for r in refetch for f in refetch_fetches(src, r)], {}, refetch)
    windows: dict[str, str] = {}
    if src.provider == "lightspeed":
        fetches = _lightspeed(src)
    elif src.provider == "revel":
        fetches = _revel(src)
    elif src.provider == "atlas":
        fetches = _atlas(src)
    elif src.provider == "vinculum":
        fetches = _vinculum(src, creds, now, windows)
    elif src.provider == "unicommerce":
        fetches = _unicommerce(src, now, windows)
    else:
        raise PlanError(f"{src.provider} has no pull API here; pullable: {', '.join(PULL_KINDS)}")
    return Plan(fetches, windows, [])


def refetch_fetches(src: PollSource, refetch: str) -> list[Fetch]:
    """An adapter's ``refetch`` ("GET /resources/Product/?establishment=1", "GET /admin/v1/menus/8921")."""
    _, _, target = refetch.partition(" ")
    parts = urlsplit(target)
    if src.provider == "revel":
        est = parse_qs(parts.query).get("establishment", [""])[0]
        return _revel(src, [est] if est and est != "None" else None)
    if src.provider == "atlas":
        return _atlas(src, [parts.path.rstrip("/").rsplit("/", 1)[-1]])
    raise PlanError(f"{src.provider} does not refetch")


# --- following a response ------------------------------------------------------------------------------
def follow(src: PollSource, creds: Mapping[str, Any], fetch: Fetch, body: bytes) -> list[Fetch]:
    """The next page, or the detail loads a list names; nothing when the document says it is the last."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    if src.provider == "revel":
        nxt = (data.get("meta") or {}).get("next") if isinstance(data, dict) else None
        # tastypie's ``next`` is a path relative to the instance
        return [Fetch(fetch.endpoint, "GET", urljoin(src.base_url, nxt), fetch.family, fetch.headers,
                      doc_headers=fetch.doc_headers, page=fetch.page + 1)] if nxt else []
    if fetch.endpoint == "menu/list":  # Lightspeed
        loc = fetch.doc_headers["X-Business-Location-Id"]
        return [_lightspeed_load(src, loc, m, src.options.get("account_profile")) for m in _menu_ids(data)]
    if fetch.endpoint == "menus/list":  # Atlas
        return _atlas(src, _menu_ids(data))
    if src.provider == "vinculum" and isinstance(data, dict) and fetch.request is not None:
        if str(data.get("responseCode", "0")) not in ("0", "200") or not _vinculum_more(data):
            return []
        page = fetch.page + 1
        body_next = {**fetch.request, "pageNumber": str(page) if isinstance(fetch.request.get("pageNumber"), str)
                     else page}
        loc = fetch.doc_headers.get(LOCATION_HEADER)
        return [vinculum_fetch(src, creds, fetch.endpoint, body_next, page=page, loc=loc,
                               cursor=fetch.cursor or "")]
    return []


def _menu_ids(data: Any) -> list[str]:
    """Ids out of a menu list: a JSON array, or an object holding one (INFERRED shapes for both vendors)."""
    items = data
    if isinstance(data, dict):
        items = next((data[k] for k in ("menus", "data", "items", "objects") if isinstance(data.get(k), list)), [])
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            value = next((item[k] for k in ("id", "menuId", "ikentooMenuId") if item.get(k) is not None), None)
            if value is not None:
                out.append(str(value))
        elif isinstance(item, (int, str)):
            out.append(str(item))
    return out


def _vinculum_more(data: Mapping[str, Any]) -> bool:
    if data.get("hasMore") in (True, "true", "True", "Y", "y"):
        return True
    for holder in (data, data.get("response")):
        if isinstance(holder, Mapping) and holder.get("totalPages") is not None:
            try:
                return int(holder.get("currentPage") or 1) < int(holder["totalPages"])
            except (TypeError, ValueError):
                return False
    return False


# --- retry and scheduling ------------------------------------------------------------------------------
def retry_delay(attempt: int, retry_after: str | None, now: datetime, *, base_s: float, max_s: float,
                rng: random.Random | None = None) -> float:
    """``Retry-After`` (seconds or an HTTP date) when the server names one, else exponential backoff with full
    jitter; never longer than ``max_s``."""
    if retry_after:
        text = retry_after.strip()
        try:
            return min(max_s, max(0.0, float(text)))
        except ValueError:
            try:
                return min(max_s, max(0.0, (parsedate_to_datetime(text) - now).total_seconds()))
            except (TypeError, ValueError):
                pass
    return (rng or random).uniform(0, min(max_s, base_s * (2 ** attempt)))


def next_run(src: PollSource, now: datetime, *, ok: bool, max_backoff_s: float,
             rng: random.Random | None = None) -> datetime:
    """On success: one interval later. On failure: the interval doubled per consecutive failure (capped),
    jittered by up to 10 % so many sources failing together do not retry in lockstep."""
    if ok:
        return now + timedelta(seconds=src.interval_s)
    failures = src.consecutive_failures + 1  # counting this run
    delay = min(max_backoff_s, src.interval_s * (2 ** min(failures, 16)))
    return now + timedelta(seconds=delay * (1 + (rng or random).uniform(0, 0.1)))


def parse_every(text: str) -> int:
    """``30s``, ``5m``, ``1h``, ``1d`` or plain seconds → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    try:
        seconds = int(text[:-1]) * units[text[-1]] if text and text[-1] in units else int(text)
    except (ValueError, KeyError) as exc:
        raise PlanError(f"bad interval {text!r} (e.g. 30s, 5m, 1h)") from exc
    if seconds < 1:
        raise PlanError("the interval must be at least 1s")
    return seconds


# --- notifications -------------------------------------------------------------------------------------
def notification_refetches(deliveries: list[Any]) -> list[tuple[str, str, str]]:
    """(tenant, provider, refetch) for each webhook whose parsed source asks for a pull (Revel and Atlas
    ``menu.updated``). Anything unparseable is the pipeline's business (it records the failure), not ours."""
    from ingest.errors import IngestError
    from ingest.pipeline import adapter_for

    out = []
    for d in deliveries:
        if d.provider not in NOTIFYING or d.pulled:
            continue
        try:
            source = adapter_for(d.provider).parse(d)
        except IngestError:
            continue
        refetch = getattr(source, "refetch", None)
        if refetch:
            out.append((d.tenant_id, d.provider, str(refetch)))
    return out
