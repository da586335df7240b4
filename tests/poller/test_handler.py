"""Pure planning: retry delays, windows, paging decisions, refetch plans, rescheduling."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from services.poller import handler
from services.poller.handler import Fetch, PlanError, PollSource

NOW = datetime(2026, 1, 14, 4, 45, tzinfo=timezone.utc)


def _src(provider: str, options: dict, state: dict | None = None, failures: int = 0) -> PollSource:  # type: ignore[type-arg]
    return PollSource(1, "t", provider, "https://x.example", "none", options, 300, state or {}, failures)


def test_retry_after_wins_and_is_capped_else_jittered_exponential() -> None:
    assert handler.retry_delay(0, "7", NOW, base_s=0.5, max_s=60) == 7.0
    assert handler.retry_delay(0, "999", NOW, base_s=0.5, max_s=60) == 60.0
    assert handler.retry_delay(0, "Wed, 14 Jan 2026 04:45:30 GMT", NOW, base_s=0.5, max_s=60) == 30.0
    delays = [handler.retry_delay(4, None, NOW, base_s=0.5, max_s=60, rng=random.Random(i)) for i in range(50)]
    assert all(0 <= d <= 8.0 for d in delays) and len(set(delays)) > 1


def test_windows_overlap_the_previous_end_and_vinculum_pages_follow() -> None:
    state = {"windows": {"inventoryStatus:KOR": (NOW - timedelta(minutes=5)).isoformat()}}
    p = handler.plan(_src("vinculum", {"locations": ["KOR"], "overlap_s": 120}, state),
                     {"api_owner": "o", "api_key": "k"}, NOW)
    [f] = p.fetches
    assert f.request is not None and f.request["fromDate"] == "14/01/2026 10:08:00"  # IST, 7 min before now
    assert p.windows == {"inventoryStatus:KOR": NOW.isoformat()}
    more = json.dumps({"responseCode": 0, "response": {"totalPages": 2, "currentPage": 1}}).encode()
    [nxt] = handler.follow(_src("vinculum", {}), {"api_owner": "o", "api_key": "k"}, f, more)
    assert nxt.page == 2 and nxt.request is not None and nxt.request["pageNumber"] == 2
    last = json.dumps({"responseCode": 0, "response": {"totalPages": 2, "currentPage": 2}}).encode()
    assert handler.follow(_src("vinculum", {}), {}, nxt, last) == []


def test_vinculum_each_location_and_its_pages_store_the_polled_location() -> None:
    creds = {"api_owner": "o", "api_key": "k"}
    p = handler.plan(_src("vinculum", {"locations": ["KOR", "BLR"]}), creds, NOW)
    assert [(f.request or {}).get("locCode") for f in p.fetches] == ["KOR", "BLR"]
    assert [f.doc_headers.get("X-Vinculum-Location") for f in p.fetches] == ["KOR", "BLR"]
    more = json.dumps({"responseCode": 0, "response": {"totalPages": 2, "currentPage": 1}}).encode()
    [nxt] = handler.follow(_src("vinculum", {}), creds, p.fetches[1], more)
    assert nxt.doc_headers["X-Vinculum-Location"] == "BLR" and (nxt.request or {})["locCode"] == "BLR"
    [single] = handler.plan(_src("vinculum", {}), creds, NOW).fetches
    assert "X-Vinculum-Location" not in single.doc_headers  # no locCode asked: the option location applies


def test_unicommerce_minutes_cover_the_gap_capped_at_a_day() -> None:
    state = {"windows": {"inventorySnapshot:F1": (NOW - timedelta(minutes=10)).isoformat()}}
    [f] = handler.plan(_src("unicommerce", {"facilities": ["F1"]}, state), {}, NOW).fetches
    assert f.request == {"updatedSinceInMinutes": 12} and f.headers["Facility"] == "F1"
    [g] = handler.plan(_src("unicommerce", {"facilities": ["F1"]}), {}, NOW).fetches
    assert g.request == {"updatedSinceInMinutes": 1440}


def test_refetch_plans_only_the_named_menu_and_missing_options_are_refused() -> None:
    p = handler.plan(_src("atlas", {"merchant_id": "m"}, {"refetch": ["GET /admin/v1/menus/42"]}), {}, NOW)
    assert [f.url for f in p.fetches] == ["https://x.example/admin/v1/menus/42"] and p.refetched
    with pytest.raises(PlanError):
        handler.plan(_src("lightspeed", {}), {}, NOW)
    with pytest.raises(PlanError):
        handler.plan(_src("omuni", {}), {}, NOW)


def test_failures_back_off_exponentially_and_success_resets() -> None:
    ok = handler.next_run(_src("revel", {}, failures=3), NOW, ok=True, max_backoff_s=3600)
    assert ok == NOW + timedelta(seconds=300)
    bad = handler.next_run(_src("revel", {}, failures=1), NOW, ok=False, max_backoff_s=3600,
                           rng=random.Random(0))
    assert timedelta(seconds=1200) <= bad - NOW <= timedelta(seconds=1320)
    capped = handler.next_run(_src("revel", {}, failures=10), NOW, ok=False, max_backoff_s=3600)
    assert capped - NOW <= timedelta(seconds=3960)


def test_revel_next_page_is_resolved_against_the_instance() -> None:
    f = Fetch("Product", "GET", "https://x.example/resources/Product/?offset=0", "menu")
    body = json.dumps({"meta": {"next": "/resources/Product/?offset=20"}, "objects": []}).encode()
    [nxt] = handler.follow(_src("revel", {}), {}, f, body)
    assert nxt.url == "https://x.example/resources/Product/?offset=20" and nxt.page == 2
