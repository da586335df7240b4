"""A real Prometheus scrapes every service of the running stack and loads and evaluates deploy's alert rules."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.devstack import free_port
from tests.stack import ROOT, Stack

pytestmark = pytest.mark.e2e
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = shutil.which("prometheus")
HTTP_SERVICES = {"receiver", "support", "views"}


def config(stack: Stack) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml's jobs and labels, with the stack's ports as static targets."""
    urls = stack.metrics_urls()

    def target(name: str) -> dict[str, Any]:
        host = urls[name].split("//", 1)[1].split("/", 1)[0]
        return {"targets": [host], "labels": {"service": name}}

    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "pos-ingest-http", "static_configs": [target(n) for n in sorted(urls) if n in HTTP_SERVICES]},
            {"job_name": "pos-ingest-stages",
             "static_configs": [target(n) for n in sorted(urls) if n not in HTTP_SERVICES]},
        ],
    }


def api(base: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]  # type: ignore[no-any-return]


def wait(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """``check()`` until it returns something truthy; its last complaint on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last and not isinstance(last, str):
                return last
        except (urllib.error.URLError, ConnectionError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last}")


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.skip("no prometheus binary (Debian package `prometheus`: apt-get install -y prometheus)")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(config(stack), sort_keys=False))
    check = subprocess.run([shutil.which("promtool") or "promtool", "check", "config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as resp:
                return resp.status == 200

        wait(ready, "prometheus /-/ready", timeout=30)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_prometheus_scrapes_every_service_and_the_alert_rules_load(stack: Stack, prometheus: str) -> None:
    started = set(stack.services())
    # every service `pos-ingest up` runs has a metrics address (a new one without it fails here)
    assert started and set(stack.metrics_urls()) == started
    assert {"receiver", "views", "dedupe", "mapper", "transformer", "validator", "command-writer",
            "failure-recorder"} <= started

    def all_up() -> list[dict[str, Any]] | str:
        targets = api(prometheus, "/api/v1/targets?state=active")["activeTargets"]
        down = {t["labels"]["service"]: t["health"] + " " + t["lastError"] for t in targets if t["health"] != "up"}
        if {t["labels"]["service"] for t in targets} != started or down:
            return f"targets not all up yet: {down}"
        return targets  # type: ignore[no-any-return]

    wait(all_up, "every target up")
    # the same through PromQL: up == 1 for every service, and each answered with samples
    up = {r["metric"]["service"]: r["value"][1] for r in api(prometheus, "/api/v1/query?query=up")["result"]}
    assert up == {name: "1" for name in started}
    samples = api(prometheus, "/api/v1/query?query=scrape_samples_scraped")["result"]
    assert all(float(r["value"][1]) > 10 for r in samples), samples

    expected = {g["name"]: {r["alert"] for r in g["rules"]} for g in yaml.safe_load(ALERTS.read_text())["groups"]}

    def rules_evaluated() -> dict[str, Any] | str:
        groups = api(prometheus, "/api/v1/rules")["groups"]
        loaded = {g["name"]: {r["name"] for r in g["rules"]} for g in groups}
        if loaded != expected:
            return f"rules loaded {loaded}"
        unhealthy = [(r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
                     if r["health"] != "ok"]
        return f"not evaluated cleanly yet: {unhealthy}" if unhealthy else {"groups": groups}

    groups = wait(rules_evaluated, "alert rules loaded and evaluated")["groups"]
    assert sum(len(g["rules"]) for g in groups) == sum(len(v) for v in expected.values())
    # a healthy stack raises no alert that means "down" or "cannot write"
    firing = {a["labels"]["alertname"] for a in api(prometheus, "/api/v1/alerts")["alerts"]}
    assert not firing & {"PosIngestTargetDown", "PosIngestDeadLetterWriteErrors"}, firing
