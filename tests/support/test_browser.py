"""The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): fix a mapping failure
and watch the payload go through; replay 1,000 filtered payloads in bulk and watch the job finish."""
from __future__ import annotations

import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.stack import Stack
from tests.support.helpers import TOKEN, send, tenant_with_partial_mappings, wms_event

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
#: the docs' screenshots are refreshed on request only (``UPDATE_SCREENSHOTS=1``): a plain test run leaves the
#: working tree as it found it
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS")
         else Path(tempfile.gettempdir()) / "pos-ingest-screenshots")
BULK = 1000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("apt-get install chromium (Debian's package, /usr/bin/chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser, stack: Stack):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30000)
    pg.goto(stack.support + "/payloads")
    assert "/login" in pg.url  # the dashboard is behind a token
    pg.fill("input[name=token]", TOKEN)
    pg.click("#login")
    pg.wait_for_url(re.compile(r"/payloads"))
    yield pg
    context.close()


def off_loop(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Playwright's sync API owns this thread's event loop; the stack's asyncpg helpers need their own."""
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(fn, *args, **kwargs).result()


def shot(pg, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def test_fix_a_mapping_in_the_dashboard_and_watch_the_payload_go_through(page, stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    sku = f"MILK-{uuid.uuid4().hex[:6]}"
    raw_ids = [send(stack, tenant, wms_event(sku, str(n + 5))) for n in range(2)]
    off_loop(stack.wait_for, "SELECT raw_id FROM failures WHERE tenant_id = $1 AND class = 'mapping'", tenant,
                   check=lambda r: len(r) == 2)

    # the payload log filtered to the mapping failures of this tenant
    page.goto(f"{stack.support}/payloads")
    page.fill("input[name=tenant]", tenant)
    page.select_option("select[name=class]", "mapping")
    page.click("#apply-filter")
    page.wait_for_selector(f"tr[data-raw='{raw_ids[0]}']")
    assert page.locator("#payloads tr[data-raw]").count() == 2
    shot(page, "payloads")

    # the payload page: the trail stops at the mapper, the body is pretty-printed
    page.click(f"a[href='/payloads/{raw_ids[0]}']")
    page.wait_for_selector("#trail")
    assert "mapped: failed" in page.inner_text("#trail")
    assert f'"sku": "{sku}"' in page.inner_text("#body")
    shot(page, "payload-failed")

    # failures grouped; add the missing item mapping from the failures page
    page.goto(f"{stack.support}/failures?tenant={tenant}")
    assert "unmapped_reference" in page.inner_text("#groups")
    shot(page, "failures")
    row = page.locator(f"tr[data-missing='item:{sku}']")
    row.locator("input[name=canonicalId]").fill("item-milk")
    row.locator("button").click()
    page.wait_for_selector("#msg")
    assert "2 payload(s) re-driven" in page.inner_text("#msg")

    # every affected payload goes through: watch the payload page until its latest attempt is processed
    deadline = time.monotonic() + 90
    while True:
        page.goto(f"{stack.support}/payloads/{raw_ids[1]}")
        if page.locator(".badge.s-processed").count() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    assert "commands written: ok" in page.inner_text("#trail")
    assert "UpdateStockLevel" in page.inner_text("#trail")
    shot(page, "payload-redriven")
    rows = off_loop(stack.query, "SELECT status FROM raw_payloads WHERE raw_id = ANY($1::uuid[])", raw_ids)
    assert {r["status"] for r in rows} == {"processed"}

    page.goto(f"{stack.support}/mappings?tenant={tenant}&provider=inhouse-wms")
    assert "item-milk" in page.inner_text("#mappings")
    shot(page, "mappings")


def test_bulk_replay_of_a_filtered_set_in_the_dashboard(page, stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    bodies = [wms_event(f"BULK-{n % 50}", str(n)) for n in range(BULK)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: send(stack, tenant, b), bodies))
    off_loop(stack.wait_for, "SELECT count(DISTINCT raw_id) AS n FROM failures WHERE tenant_id = $1", tenant,
                   check=lambda r: r[0]["n"] == BULK, timeout=240)

    page.goto(f"{stack.support}/payloads?tenant={tenant}&status=failed")
    page.click("#replay-matching")
    page.wait_for_selector("#estimate")
    assert f"matches {BULK} payload(s)" in page.inner_text("#estimate")  # the whole match set, not a page
    page.fill("input[name=ratePerS]", "500")
    page.click("#start-replay")
    page.wait_for_url(re.compile(r"/replays/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_function(f"document.querySelector(\"[data-job='{job_id}']\").getAttribute('data-state') === 'done'",
                           timeout=120000)
    assert f"{BULK} / {BULK} (done)" in page.inner_text(".job-text")
    page.goto(f"{stack.support}/replays")
    shot(page, "replays")
    done = off_loop(stack.query, "SELECT done, state FROM replay_jobs WHERE job_id = $1::uuid", job_id)[0]
    assert (done["done"], done["state"]) == (BULK, "done")
    audited = off_loop(stack.query, "SELECT count(*) AS n FROM audit_log WHERE action = 'raw.replay' AND details->>'jobId' = $1",
                          job_id)[0]["n"]
    assert audited == BULK
