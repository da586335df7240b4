"""Lifecycle: SIGTERM drains and exits within 10 s, restarts resume from committed offsets, lag drains."""
from __future__ import annotations

import signal
import time

import psutil
import pytest

from ingest.ledger import scan_topics
from tests.chaos.conftest import MEASURES
from tests.chaos.harness import STAGES, ChaosStack

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full]


def assert_all_accounted(chaos: ChaosStack, tenant: str, acked: int) -> list[dict]:  # type: ignore[type-arg]
    rows = chaos.wait_accounted(tenant, acked, timeout=180)
    missing = [r["raw_id"] for r in rows if r["bucket"] in ("lost", "in_flight")]
    assert not missing and len(rows) >= acked, missing[:5]
    scan = scan_topics(chaos.settings, tenant=tenant)
    assert scan["complete"] and scan["duplicate_command_ids"] == 0, scan["duplicate_sample"]
    return rows


@pytest.mark.parametrize("service", STAGES)
def test_sigterm_drains_commits_and_exits_within_10s(chaos: ChaosStack, service: str) -> None:
    tenant = chaos.new_tenant()
    load = chaos.load(tenant, rate=6.0, duration_s=7.0).start()
    time.sleep(2.5)
    proc = chaos.service_proc(service)
    log_before = len(chaos.stack.logs(service))
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except psutil.TimeoutExpired:
        pytest.fail(f"{service} did not exit within 10 s of SIGTERM")
    elapsed = time.monotonic() - started
    chaos.wait_restarted(service, proc.pid)  # the supervisor brings it back; it resumes from committed offsets
    sent = load.join()
    acked = [s for s in sent if s.ok]
    assert len(acked) == len(sent), "a stage restart must never refuse a webhook"
    assert_all_accounted(chaos, tenant, len(acked))
    tail = chaos.stack.logs(service)[log_before:]
    assert "Traceback" not in tail, tail[-2000:]
    MEASURES.append(f"SIGTERM {service:<17} exited in {elapsed:.2f}s, restarted, {len(acked)} payloads, "
                    "none lost or duplicated")


def test_backpressure_receiver_keeps_acknowledging_and_lag_drains(chaos: ChaosStack) -> None:
    procs = [chaos.service_proc(s) for s in STAGES]
    tenant = chaos.new_tenant()
    for p in procs:
        p.suspend()  # SIGSTOP: every stage stalls, lag builds up
    try:
        sent = chaos.load(tenant, rate=10.0, duration_s=8.0).start().join()
    finally:
        for p in procs:
            p.resume()
    resumed = time.time()
    acked = [s for s in sent if s.ok]
    assert len(acked) == len(sent), {s.status for s in sent}
    rows = assert_all_accounted(chaos, tenant, len(acked))
    drain_s = max(r["accounted_at"].timestamp() for r in rows) - resumed
    MEASURES.append(f"back-pressure: stages stopped for {len(sent) / 10:.0f}s, {len(acked)}/{len(sent)} "
                    f"acknowledged meanwhile, lag drained {drain_s:.1f}s after the stages resumed")
