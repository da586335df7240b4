"""``make bench``: the stack against same-run baselines — receiver, pipeline, bulk feed, cost — with a table and plots.

Brings up embedded dependencies (or uses ``KAFKA_BOOTSTRAP_SERVERS`` / ``S3_ENDPOINT_URL`` from the environment)
and ``pos-ingest up`` stacks of its own (own database, topic prefix, bucket), runs the signed load generator
(``ingest.loadgen``) on loopback, tears everything down, and writes ``bench/results/latest.{json,md}`` plus
PNG plots. ``--quick`` shortens every phase (development runs on a shared machine).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.stack: the same stack the e2e tests run

import psutil  # noqa: E402
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition  # noqa: E402

from ingest.devstack import free_port, wait_port  # noqa: E402
from ingest.loadgen import LoadResult, Mix, percentile, run_load_processes, setup_tenants  # noqa: E402
from tests.stack import Deps, Stack, start_deps, start_stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TENANTS = 4
#: connections of the closed-loop saturation runs: enough that the raw log's group-commit window (30 ms) is
#: not what limits a closed loop (64 connections / ~45 ms per answer would cap it near 1,400/s)
SATURATION_CONNECTIONS = 256
STAGES = ("dedupe", "mapper", "transformer", "validator", "command-writer", "failure-recorder")
TARGETS = {  # figure → (comparison, bound); the targets for a 2-core machine
    "receiver.ratio": (">=", 0.5), "receiver.p99_ms_at_half": ("<=", 100.0),
    "pipeline.ratio": (">=", 0.25), "pipeline.e2e_p99_ms_at_1000": ("<=", 500.0),
    "cost.s3_puts_per_1000": ("<=", 50.0), "feed.rows_per_s": (">=", 20_000.0), "feed.peak_rss_mb": ("<=", 250.0),
}
PROFILE: dict[str, bool] = {"on": False}


def log(msg: str) -> None:
    print(f"[bench {datetime.now(timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# --- scraping ---------------------------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$')


def prom_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of ``name`` in a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == name:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
            out.append((labels, float(m.group(4))))
    return out


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def rawlog_totals(receiver: str) -> tuple[float, float]:
    """(segments flushed, payloads in them) from the receiver's ``pos_ingest_rawlog_batch_size`` histogram."""
    text = scrape(receiver + "/metrics")
    count = sum(v for _, v in prom_samples(text, "pos_ingest_rawlog_batch_size_count"))
    total = sum(v for _, v in prom_samples(text, "pos_ingest_rawlog_batch_size_sum"))
    return count, total


def stage_latency(ports: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per stage: count, sum and cumulative buckets of ``pos_ingest_stage_latency_seconds`` (receive → done)."""
    out: dict[str, dict[str, float]] = {}
    for stage, port in ports.items():
        text = scrape(f"http://127.0.0.1:{port}/metrics")
        hist = {"count": sum(v for _, v in prom_samples(text, "pos_ingest_stage_latency_seconds_count")),
                "sum": sum(v for _, v in prom_samples(text, "pos_ingest_stage_latency_seconds_sum"))}
        for labels, v in prom_samples(text, "pos_ingest_stage_latency_seconds_bucket"):
            hist[labels.get("le", "")] = hist.get(labels.get("le", ""), 0.0) + v
        out[stage] = hist
    return out


def latency_breakdown(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
                      ) -> dict[str, dict[str, float | None]]:
    """Mean and bucket-bound p99 (ms) of receive → processed, per stage, between two scrapes."""
    out: dict[str, dict[str, float | None]] = {}
    for stage, hist in after.items():
        prev = before.get(stage, {})
        n = hist["count"] - prev.get("count", 0.0)
        if n <= 0:
            continue
        bounds = sorted((float(k), hist[k] - prev.get(k, 0.0)) for k in hist if k not in ("count", "sum"))
        p99 = next((b for b, c in bounds if c >= 0.99 * n), None)
        out[stage] = {"n": n, "mean_ms": round((hist["sum"] - prev.get("sum", 0.0)) / n * 1000, 1),
                      "p99_le_ms": None if p99 is None or p99 == float("inf") else p99 * 1000}
    return out


def moto_puts(log_path: Path, bucket: str) -> int:
    """Object PUTs into ``bucket`` in the embedded S3 server's access log (-1: no such log, an external S3)."""
    if not log_path.exists():
        return -1
    needle = f'"PUT /{bucket}/'
    with log_path.open(errors="replace") as f:
        return sum(1 for line in f if needle in line)


def pg_xacts(stack: Stack) -> int:
    rows = stack.query("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = "
                       "current_database()")
    return int(rows[0]["n"])


def pg_statements(stack: Stack) -> int | None:
    """Total statement calls on this database when pg_stat_statements is loaded, else None."""
    try:
        rows = stack.query("SELECT coalesce(sum(calls), 0) AS n FROM pg_stat_statements s JOIN pg_database d "
                           "ON d.oid = s.dbid WHERE d.datname = current_database()")
        return int(rows[0]["n"])
    except Exception:  # noqa: BLE001 — the extension is optional on the machine's server
        return None


# --- processes --------------------------------------------------------------------------------------
def stack_processes(stack: Stack, deps_ports: list[int]) -> dict[str, psutil.Process]:
    """service name → process, for the stack's children and the embedded broker/S3 server."""
    out: dict[str, psutil.Process] = {}
    try:
        for child in psutil.Process(stack.proc.pid).children(recursive=True):
            cmd = child.cmdline()
            if "run" in cmd:
                out[cmd[cmd.index("run") + 1]] = child
    except psutil.Error:
        pass
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        for port in deps_ports:
            if f":{port}" in cmd or f"-p {port}" in cmd:
                out["broker" if "broker" in cmd else "s3"] = proc
    return out


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in procs.items():
        try:
            t = proc.cpu_times()
            out[name] = t.user + t.system
        except psutil.Error:
            continue
    if procs:
        out[POSTGRES] = postgres_cpu_seconds()
    return out


#: the PostgreSQL server's processes, summed (the machine's server: its other databases' work counts too)
POSTGRES = "postgres (server)"


def postgres_cpu_seconds() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"] is not None:
            total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return total


def cpu_ms_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    """CPU milliseconds per request, per process (contention-proof: a busy machine slows, it does not add CPU)."""
    return {k: round(max(0.0, after[k] - before.get(k, 0.0)) / max(1, requests) * 1000, 3) for k in sorted(after)}


class Sampler(threading.Thread):
    """Every second: the stages' consumer lag (their /metrics) and every process's RSS and CPU."""

    def __init__(self, stack: Stack, deps_ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.stack, self.deps_ports = stack, deps_ports
        self.t0 = time.time()
        self.lag: list[tuple[float, dict[str, float]]] = []
        self.peak_rss: dict[str, float] = defaultdict(float)
        self.marks: list[tuple[float, str]] = []
        self._halt = threading.Event()
        base = int(stack.env["METRICS_PORT_BASE"])
        from ingest.supervisor import METRICS_OFFSETS

        self.ports = {s: base + METRICS_OFFSETS[s] for s in STAGES if s in METRICS_OFFSETS}

    def mark(self, label: str) -> None:
        self.marks.append((time.time() - self.t0, label))

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) each process has used so far."""
        return cpu_seconds(stack_processes(self.stack, self.deps_ports))

    def run(self) -> None:
        procs: dict[str, psutil.Process] = {}
        while not self._halt.wait(1.0):
            if len(procs) < len(STAGES) + 2:
                procs = stack_processes(self.stack, self.deps_ports)
            for name, proc in procs.items():
                try:
                    self.peak_rss[name] = max(self.peak_rss[name], proc.memory_info().rss / 2**20)
                except psutil.Error:
                    continue
            lags = {}
            for stage, port in self.ports.items():
                samples = prom_samples(scrape(f"http://127.0.0.1:{port}/metrics"), "pos_ingest_consumer_lag")
                lags[stage] = sum(v for _, v in samples)
            self.lag.append((time.time() - self.t0, lags))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class EventWatch(threading.Thread):
    """First arrival time (wall clock) of each rawId on the public topics, read_committed."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                                  "enable.auto.commit": False, "isolation.level": "read_committed",
                                  "fetch.wait.max.ms": 50})
        tps = []
        for topic in topics:
            meta = self.consumer.list_topics(topic, timeout=10)
            tps += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.topics[topic].partitions]
        self.consumer.assign(tps)
        self.first: dict[str, dict[str, float]] = {t: {} for t in topics}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            msgs = self.consumer.consume(1000, 0.05)
            now = time.time()
            for m in msgs:
                if m.error():
                    continue
                raw_id = next((v.decode() for k, v in (m.headers() or []) if k == "raw-id" and v), None)
                if raw_id:
                    self.first[m.topic()].setdefault(raw_id, now)
        self.consumer.close()

    def wait_for(self, topic: str, raw_ids: list[str], timeout: float, idle: float = 20.0) -> float:
        """Seconds waited until every rawId arrived, or until ``timeout`` / ``idle`` seconds without progress."""
        start = time.time()
        seen, last_progress = -1, start
        while time.time() - start < timeout:
            n = sum(1 for r in raw_ids if r in self.first[topic])
            if n == len(raw_ids):
                break
            if n != seen:
                seen, last_progress = n, time.time()
            elif time.time() - last_progress > idle:
                break
            time.sleep(0.25)
        return time.time() - start

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


@contextmanager
def profiled(name: str, pids: dict[str, int], seconds: float) -> Iterator[None]:
    """py-spy flame graphs of ``pids`` for ``seconds`` (with ``--profile``) into bench/results/profiles/."""
    spies = []
    if PROFILE["on"]:
        out = RESULTS / "profiles"
        out.mkdir(parents=True, exist_ok=True)
        spy = str(Path(sys.executable).with_name("py-spy"))
        for service, pid in pids.items():
            spies.append(subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "--gil",
                                           "-f", "raw", "-o", str(out / f"{name}-{service}.txt")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for s in spies:
            try:
                s.wait(seconds + 20)
            except subprocess.TimeoutExpired:
                s.kill()


# --- phases -----------------------------------------------------------------------------------------
def load(base: str, *, rate: float | None, seconds: float, concurrency: int = SATURATION_CONNECTIONS, warmup: int = 0,
         processes: int = 1, total: int | None = None) -> LoadResult:
    total = total or (int(rate * seconds) if rate else 10_000_000)
    return run_load_processes(base, processes=processes, tenants=tenant_names(), rate=rate,
                              concurrency=concurrency, total=total, duration_s=seconds, warmup=warmup)


def tenant_names() -> list[str]:
    return [f"bench{i}" for i in range(TENANTS)]


def sweep(base: str, seconds: float, label: str, pids: dict[str, int] | None = None) -> dict[str, Any]:
    """Saturation (closed loop), then open loop at 25/50/75% of it."""
    load(base, rate=None, seconds=2, concurrency=16)  # warm-up: imports, caches, pools, connections
    log(f"{label}: saturation, closed loop, {SATURATION_CONNECTIONS} connections, {seconds:.0f}s")
    procs = {n: psutil.Process(p) for n, p in (pids or {}).items()}
    cpu0 = cpu_seconds(procs)
    with profiled(label, pids or {}, seconds):
        sat = load(base, rate=None, seconds=seconds, concurrency=SATURATION_CONNECTIONS)
    points = [{"fraction": 1.0, "offered_rps": None, **sat.summary(),
               "server_cpu_ms_per_request": cpu_ms_per_request(cpu0, cpu_seconds(procs), sat.ok)}]
    saturation = sat.throughput_rps
    for fraction in (0.25, 0.5, 0.75):
        rate = max(1.0, saturation * fraction)
        log(f"{label}: open loop at {fraction:.0%} = {rate:.0f}/s for {seconds:.0f}s")
        r = load(base, rate=rate, seconds=seconds)
        points.append({"fraction": fraction, **r.summary()})
    return {"throughput_rps": round(saturation, 1), "points": points}


def receiver_baseline(seconds: float) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "baseline_receiver.py"), "--port", str(port)],
                            stdout=subprocess.DEVNULL)
    try:
        wait_port(port, 30, proc)
        return sweep(f"http://127.0.0.1:{port}", seconds, "baseline receiver", {"baseline-receiver": proc.pid})
    finally:
        proc.terminate()
        proc.wait(10)


def _pids(stack: Stack, names: tuple[str, ...]) -> dict[str, int]:
    procs = stack_processes(stack, [])
    return {n: procs[n].pid for n in names if n in procs}


def receiver_stack(deps: Deps, work: Path, seconds: float, s3_log: Path) -> dict[str, Any]:
    gen = start_stack(deps, work, services=["receiver"], extra_env=BENCH_ENV)
    stack = next(gen)
    try:
        mix = Mix()
        asyncio.run(setup_tenants(stack.dsn, tenant_names(), mix))
        segments0, payloads0 = rawlog_totals(stack.receiver)
        puts0 = moto_puts(s3_log, stack.env["S3_BUCKET"])
        result = sweep(stack.receiver, seconds, "receiver", _pids(stack, ("receiver",)))
        segments1, payloads1 = rawlog_totals(stack.receiver)
        puts1 = moto_puts(s3_log, stack.env["S3_BUCKET"])
        result["rawlog"] = {"segments": segments1 - segments0, "payloads": payloads1 - payloads0,
                            "moto_puts": puts1 - puts0 if puts0 >= 0 else None}
        return result
    finally:
        _close(gen)


def _close(gen: Iterator[Stack]) -> None:
    try:
        next(gen)
    except StopIteration:
        pass


def hops_baseline(deps: Deps, messages: int) -> dict[str, Any]:
    log(f"five-hop baseline: {messages} messages")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "baseline_hops.py"), "--bootstrap", deps.kafka,
                          "--messages", str(messages)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"baseline_hops failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def e2e_stats(watch: EventWatch, topic: str, acks: list[Any]) -> tuple[dict[str, Any], list[float]]:
    first = watch.first[topic]
    lat = [(first[a.raw_id] - a.acked_at) * 1000 for a in acks if a.raw_id in first]
    return {"matched": len(lat), "acked": len(acks),
            **{f"p{p}_ms": _r(percentile(lat, p)) for p in (50, 95, 99)},
            "max_ms": _r(max(lat) if lat else None)}, lat


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def pipeline(deps: Deps, work: Path, e2e_seconds: float, sat_seconds: float, s3_log: Path) -> dict[str, Any]:
    gen = start_stack(deps, work, extra_env=BENCH_ENV)
    stack = next(gen)
    deps_ports = [int(u.rsplit(":", 1)[1]) for u in (deps.kafka, deps.s3)]
    sampler = Sampler(stack, deps_ports)
    watch = EventWatch(stack.kafka, [stack.topic("catalog.commands"), stack.topic("inventory.events")])
    commands, inventory = stack.topic("catalog.commands"), stack.topic("inventory.events")
    try:
        mix = Mix()
        asyncio.run(setup_tenants(stack.dsn, tenant_names(), mix))
        sampler.start()
        watch.start()
        # warm-up: every stage has joined its group and loaded its caches before anything is timed
        log("pipeline: warm-up")
        warm = load(stack.receiver, rate=None, seconds=10, concurrency=8)
        # every warm-up webhook delivered: the next phase starts on an empty pipeline
        waited = watch.wait_for(commands, [a.raw_id for a in warm.acks], timeout=120)
        log(f"pipeline: warm-up done ({warm.acked} acked, all seen after {waited:.1f}s)")
        out: dict[str, Any] = {}

        # 0. the latency floor: a light load (200/s) the stack is far from saturating
        log("pipeline: open loop 200/s for 8s (latency floor)")
        stages0 = stage_latency(sampler.ports)
        light = load(stack.receiver, rate=200, seconds=8)
        watch.wait_for(commands, [a.raw_id for a in light.acks], timeout=60)
        out["at_200"] = {"load": light.summary(), "e2e_commands": e2e_stats(watch, commands, light.acks)[0],
                         "stage_latency": latency_breakdown(stages0, stage_latency(sampler.ports))}

        # 1. end-to-end latency at an offered 1,000 webhooks/s (and the cost of that load)
        segments0, payloads0 = rawlog_totals(stack.receiver)
        puts0, xacts0, stmts0 = moto_puts(s3_log, stack.env["S3_BUCKET"]), pg_xacts(stack), pg_statements(stack)
        stages0 = stage_latency(sampler.ports)
        cpu0 = sampler.cpu()
        sampler.mark("1,000/s start")
        log(f"pipeline: open loop 1,000/s for {e2e_seconds:.0f}s")
        at1000 = load(stack.receiver, rate=1000, seconds=e2e_seconds)
        sampler.mark("1,000/s sent")
        watch.wait_for(commands, [a.raw_id for a in at1000.acks], timeout=120)
        sampler.mark("1,000/s drained")
        cpu1 = sampler.cpu()
        segments1, payloads1 = rawlog_totals(stack.receiver)
        puts1, xacts1, stmts1 = moto_puts(s3_log, stack.env["S3_BUCKET"]), pg_xacts(stack), pg_statements(stack)
        accepted = at1000.ok or 1
        e2e, lat = e2e_stats(watch, commands, at1000.acks)
        e2e_inv, _ = e2e_stats(watch, inventory, [a for a in at1000.acks if a.raw_id in watch.first[inventory]])
        out["at_1000"] = {"load": at1000.summary(), "e2e_commands": e2e, "e2e_inventory_events": e2e_inv,
                          "stage_latency": latency_breakdown(stages0, stage_latency(sampler.ports)),
                          "cpu_ms_per_webhook": cpu_ms_per_request(cpu0, cpu1, at1000.ok)}
        out["e2e_latencies_ms"] = lat
        out["cost"] = {
            "webhooks": at1000.ok, "segments": segments1 - segments0, "payloads": payloads1 - payloads0,
            "moto_puts": puts1 - puts0 if puts0 >= 0 else None,
            "s3_puts_per_1000": round((puts1 - puts0 if puts0 >= 0 else segments1 - segments0) / accepted * 1000,
                                      2),
            "pg_transactions_per_1000": round((xacts1 - xacts0) / accepted * 1000, 1),
            "pg_statements_per_1000": round((stmts1 - stmts0) / accepted * 1000, 1)
            if stmts0 is not None and stmts1 is not None else None,
        }

        # 2. sustained throughput: as fast as the receiver takes them, until the last one is an event
        pids = _pids(stack, ("receiver", *STAGES))
        sampler.mark("saturation start")
        log(f"pipeline: saturation, closed loop for {sat_seconds:.0f}s")
        cpu0 = sampler.cpu()
        t0 = time.time()
        with profiled("pipeline", pids, sat_seconds):
            sat = load(stack.receiver, rate=None, seconds=sat_seconds, concurrency=SATURATION_CONNECTIONS)
        sampler.mark("saturation sent")
        ids = [a.raw_id for a in sat.acks]
        waited = watch.wait_for(commands, ids, timeout=240)
        sampler.mark("saturation drained")
        cpu1 = sampler.cpu()
        arrivals = [watch.first[commands][r] for r in ids if r in watch.first[commands]]
        last = max(arrivals) if arrivals else time.time()
        out["saturation"] = {"load": sat.summary(), "delivered": len(arrivals), "drain_wait_s": round(waited, 1),
                             "elapsed_s": round(last - t0, 2),
                             "throughput_rps": round(len(arrivals) / (last - t0), 1) if arrivals else 0.0,
                             "e2e_commands": e2e_stats(watch, commands, sat.acks)[0],
                             "cpu_ms_per_webhook": cpu_ms_per_request(cpu0, cpu1, sat.ok)}
        out["drain"] = drain(stack, sampler, watch, commands)
        failures = stack.query("SELECT class, reason_code, count(*) AS n FROM failures GROUP BY 1, 2 ORDER BY 3 DESC")
        out["failures"] = failures
        return out
    finally:
        watch.stop()
        sampler.stop()
        out_lag = {"lag": sampler.lag, "marks": sampler.marks, "peak_rss_mb": dict(sampler.peak_rss)}
        PIPELINE_SAMPLES.update(out_lag)
        _close(gen)


#: webhooks queued for the drain phase (~10 s of the receiver at saturation on this machine)
DRAIN_MESSAGES = 20_000


def drain(stack: Stack, sampler: Sampler, watch: EventWatch, commands: str, messages: int = DRAIN_MESSAGES
          ) -> dict[str, Any]:
    """The stages alone on a backlog, measured as the five-hop baseline is: from the first message out of the
    last hop to the last. The first stage is paused (SIGSTOP) while the receiver durably accepts ``messages``
    webhooks onto ``integration.raw``, then resumed; its group rejoin is before the first command, so outside
    the measured span."""
    deps_ports = [int(u.rsplit(":", 1)[1]) for u in (stack.kafka, stack.env["S3_ENDPOINT_URL"])]
    procs = stack_processes(stack, deps_ports)
    first = procs["dedupe"]
    log(f"pipeline: drain, {messages} webhooks queued on integration.raw with dedupe paused")
    first.suspend()
    try:
        queued = load(stack.receiver, rate=None, seconds=120, total=messages)
        deadline = time.time() + 60
        while stack.query("SELECT count(*) AS n FROM raw_payloads WHERE published_at IS NULL")[0]["n"] and \
                time.time() < deadline:
            time.sleep(0.2)
        cpu0 = sampler.cpu()
        sampler.mark("drain start")
    finally:
        first.resume()
    resumed = time.time()
    ids = [a.raw_id for a in queued.acks]
    waited = watch.wait_for(commands, ids, timeout=300)
    sampler.mark("drain done")
    cpu1 = sampler.cpu()
    arrivals = sorted(watch.first[commands][r] for r in ids if r in watch.first[commands])
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return {"queued": queued.ok, "delivered": len(arrivals), "wait_s": round(waited, 1),
            "first_command_after_resume_s": round(arrivals[0] - resumed, 2) if arrivals else None,
            "span_s": round(span, 2), "throughput_rps": round((len(arrivals) - 1) / span, 1) if span else None,
            "cpu_ms_per_webhook": cpu_ms_per_request(cpu0, cpu1, len(arrivals))}


PIPELINE_SAMPLES: dict[str, Any] = {}
BENCH_ENV = {"SWEEPER_INTERVAL_S": "5", "SWEEPER_GRACE_S": "10"}  # the defaults, not the tests' 1 s / 3 s


def feed(deps: Deps) -> dict[str, Any]:
    script = ROOT / "bench" / "feed_bench.py"
    if not script.exists():
        return {"rows_per_s": None, "peak_rss_mb": None, "note": "bench/feed_bench.py is not there yet"}
    log("bulk feed: bench/feed_bench.py --json")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": deps.kafka, "S3_ENDPOINT_URL": deps.s3,
           "TEST_DATABASE_SERVER_URL": deps.pg_server}
    out = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True, timeout=360,
                         env=env, cwd=str(ROOT))
    lines = [ln for ln in out.stdout.strip().splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"rows_per_s": None, "peak_rss_mb": None,
                "note": f"feed_bench.py failed ({out.returncode}): {out.stderr[-500:]}"}
    return dict(json.loads(lines[-1]))


# --- report -----------------------------------------------------------------------------------------
def verdict(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    op, bound = TARGETS[key]
    return "PASS" if (value >= bound if op == ">=" else value <= bound) else "FAIL"


def half_point(sweep_result: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in sweep_result["points"] if p["fraction"] == 0.5)


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    rx, rb = raw["receiver"], raw["receiver_baseline"]
    pl, hb = raw["pipeline"], raw["hops_baseline"]
    receiver = {"throughput_rps": rx["throughput_rps"], "baseline_rps": rb["throughput_rps"],
                "ratio": round(rx["throughput_rps"] / rb["throughput_rps"], 3) if rb["throughput_rps"] else None,
                "p99_ms_at_half": half_point(rx)["p99_ms"], "baseline_p99_ms_at_half": half_point(rb)["p99_ms"],
                **{f"{k}_at_{int(p['fraction'] * 100)}": p[k] for p in rx["points"] if p["fraction"] < 1
                   for k in ("p50_ms", "p95_ms", "p99_ms")}}
    sat, dr = pl["saturation"], pl["drain"]
    base = hb.get("drain_rps") or hb["throughput_rps"]
    pipeline_ = {"throughput_rps": dr["throughput_rps"], "baseline_rps": base,
                 "ratio": round(dr["throughput_rps"] / base, 3) if base and dr["throughput_rps"] else None,
                 "drain_cpu_ms_per_webhook": dr["cpu_ms_per_webhook"],
                 # the whole system at once: receiver, raw log and stages sharing the two cores
                 "system_throughput_rps": sat["throughput_rps"],
                 "e2e_p50_ms_at_1000": pl["at_1000"]["e2e_commands"]["p50_ms"],
                 "e2e_p95_ms_at_1000": pl["at_1000"]["e2e_commands"]["p95_ms"],
                 "e2e_p99_ms_at_1000": pl["at_1000"]["e2e_commands"]["p99_ms"],
                 "e2e_p50_ms_at_200": pl["at_200"]["e2e_commands"]["p50_ms"],
                 "e2e_p99_ms_at_200": pl["at_200"]["e2e_commands"]["p99_ms"],
                 "cpu_ms_per_webhook": pl["saturation"]["cpu_ms_per_webhook"],
                 "achieved_rps_at_1000": pl["at_1000"]["load"]["throughput_rps"],
                 "delivered_at_1000": pl["at_1000"]["e2e_commands"]["matched"],
                 "acked_at_1000": pl["at_1000"]["e2e_commands"]["acked"]}
    return {"receiver": receiver, "pipeline": pipeline_, "feed": raw["feed"],
            "cost": {k: v for k, v in pl["cost"].items()}, "machine": raw["machine"],
            "peak_rss_mb": {k: round(v, 1) for k, v in PIPELINE_SAMPLES.get("peak_rss_mb", {}).items()}}


def markdown(s: dict[str, Any]) -> str:
    r, p, f, c = s["receiver"], s["pipeline"], s["feed"], s["cost"]

    def n(v: Any, unit: str = "", digits: int = 0) -> str:
        return "—" if v is None else f"{v:,.{digits}f}{unit}"

    rows = [
        ("Receiver durable-ack throughput", n(r["throughput_rps"], "/s"), n(r["baseline_rps"], "/s"),
         n(r["ratio"], "", 2), "≥ 0.50 × baseline", verdict("receiver.ratio", r["ratio"])),
        ("Receiver p99 at 50% of saturation", n(r["p99_ms_at_half"], " ms", 1),
         n(r["baseline_p99_ms_at_half"], " ms", 1), "—", "≤ 100 ms",
         verdict("receiver.p99_ms_at_half", r["p99_ms_at_half"])),
        ("Pipeline sustained throughput (backlog drain, first → last event)", n(p["throughput_rps"], "/s"),
         n(p["baseline_rps"], "/s"), n(p["ratio"], "", 2), "≥ 0.25 × 5-hop baseline",
         verdict("pipeline.ratio", p["ratio"])),
        ("Whole system, closed loop (receiver + stages, 202 → event)", n(p["system_throughput_rps"], "/s"), "—",
         "—", "(reported)", ""),
        ("End-to-end p99 at 1,000 webhooks/s", n(p["e2e_p99_ms_at_1000"], " ms", 1), "—", "—", "≤ 500 ms",
         verdict("pipeline.e2e_p99_ms_at_1000", p["e2e_p99_ms_at_1000"])),
        ("Bulk feed rows/s", n(f.get("rows_per_s"), "/s"), "—", "—", "≥ 20,000/s",
         verdict("feed.rows_per_s", f.get("rows_per_s"))),
        ("Bulk feed peak RSS (largest process)", n(f.get("peak_rss_mb"), " MB"), "—", "—", "≤ 250 MB",
         verdict("feed.peak_rss_mb", f.get("peak_rss_mb"))),
        ("S3 PUTs per 1,000 webhooks (at 1,000/s)", n(c["s3_puts_per_1000"], "", 1), "—", "—", "≤ 50",
         verdict("cost.s3_puts_per_1000", c["s3_puts_per_1000"])),
        ("PostgreSQL transactions per 1,000 webhooks", n(c["pg_transactions_per_1000"]), "—", "—", "(reported)", ""),
    ]
    m = s["machine"]
    lines = [f"# pos-ingest benchmark — {m['finished_at']}", "",
             f"{m['cores']} cores ({m['cpu']}), Python {m['python']}, load average at start "
             f"{m['loadavg_start']}, at end {m['loadavg_end']}; total {m['runtime_s']:.0f} s.", "",
             "| Figure | Measured | Baseline (same run) | Ratio | Target | Result |",
             "|---|---:|---:|---:|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines += ["", f"Receiver latency (p50 / p95 / p99 ms) at 25% / 50% / 75% of saturation: "
              + "; ".join(f"{r[f'p50_ms_at_{q}']} / {r[f'p95_ms_at_{q}']} / {r[f'p99_ms_at_{q}']}"
                          for q in (25, 50, 75)) + ".",
              f"End-to-end at 1,000/s (202 → `catalog.commands`): p50 {p['e2e_p50_ms_at_1000']} ms, p95 "
              f"{p['e2e_p95_ms_at_1000']} ms, p99 {p['e2e_p99_ms_at_1000']} ms; {p['delivered_at_1000']} of "
              f"{p['acked_at_1000']} acknowledged webhooks delivered; the receiver took "
              f"{p['achieved_rps_at_1000']}/s of the 1,000/s offered. At a light 200/s: p50 "
              f"{p['e2e_p50_ms_at_200']} ms, p99 {p['e2e_p99_ms_at_200']} ms.",
              "CPU ms per webhook while the stages drain a backlog, by process: "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(p["drain_cpu_ms_per_webhook"].items(),
                                                            key=lambda kv: -kv[1]) if v >= 0.005)
              + f" (total {sum(p['drain_cpu_ms_per_webhook'].values()):.2f}).",
              "CPU ms per webhook at whole-system saturation, by process: "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(p["cpu_ms_per_webhook"].items(), key=lambda kv: -kv[1]))
              + f" (total {sum(p['cpu_ms_per_webhook'].values()):.2f}).",
              "Peak RSS during the pipeline run (MB): "
              + ", ".join(f"{k} {v:.0f}" for k, v in sorted(s["peak_rss_mb"].items())) + ".", ""]
    if f.get("note"):
        lines += [f"Bulk feed: {f['note']}.", ""]
    lines += ["![receiver](receiver.png) ![pipeline](pipeline.png)", ""]
    return "\n".join(lines)


def plots(raw: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, label, style in (("receiver", "receiver (durable ack)", "-"),
                              ("receiver_baseline", "bare aiohttp + HMAC", "--")):
        pts = sorted(raw[key]["points"], key=lambda p: p["fraction"])
        offered = [p["offered_rps"] or p["throughput_rps"] for p in pts]
        ax1.plot(offered, [p["throughput_rps"] for p in pts], style, marker="o", label=label)
        for q, color in (("p50_ms", "tab:green"), ("p95_ms", "tab:orange"), ("p99_ms", "tab:red")):
            ax2.plot(offered, [p[q] for p in pts], style, marker="o", color=color, label=f"{label} {q[:3]}")
    ax1.set(xlabel="offered load (webhooks/s; last point: closed-loop saturation)", ylabel="answered 2xx/s",
            title="Receiver throughput over offered load")
    ax2.set(xlabel="offered load (webhooks/s)", ylabel="latency (ms)", yscale="log",
            title="Receiver latency percentiles over offered load")
    ax2.axhline(100, color="grey", lw=0.8, ls=":")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "receiver.png", dpi=110)
    plt.close(fig)
    written.append("receiver.png")

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.5))
    lag = PIPELINE_SAMPLES.get("lag", [])
    for stage in STAGES:
        xs = [t for t, d in lag if stage in d]
        if xs:
            ax1.plot(xs, [d[stage] for t, d in lag if stage in d], label=stage)
    for i, (t, label) in enumerate(PIPELINE_SAMPLES.get("marks", [])):
        ax1.axvline(t, color="grey", lw=0.6, ls=":")
        ax1.text(t, ax1.get_ylim()[1] * (0.95 if i % 2 == 0 else 0.55), label, rotation=90, fontsize=7, va="top")
    ax1.set(xlabel="seconds", ylabel="messages behind", title="Consumer lag per stage (pos_ingest_consumer_lag)")
    ax1.legend(fontsize=7)
    lat = sorted(raw["pipeline"].get("e2e_latencies_ms", []))
    if lat:
        ax2.plot(lat, [i / len(lat) for i in range(1, len(lat) + 1)])
        ax2.axvline(500, color="grey", lw=0.8, ls=":")
    ax2.set(xlabel="202 → catalog.commands (ms)", ylabel="fraction of webhooks", xscale="log",
            title="End-to-end latency CDF at 1,000 webhooks/s")
    cpu = sorted(raw["pipeline"]["saturation"].get("cpu_ms_per_webhook", {}).items(), key=lambda kv: kv[1])
    ax3.barh([k for k, _ in cpu], [v for _, v in cpu])
    ax3.set(xlabel="CPU ms per webhook", title="CPU per webhook by process at pipeline saturation")
    fig.tight_layout()
    fig.savefig(out / "pipeline.png", dpi=110)
    plt.close(fig)
    written.append("pipeline.png")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short phases (development on a shared machine)")
    parser.add_argument("--profile", action="store_true", help="py-spy the receiver and stages under load")
    parser.add_argument("--only", choices=["receiver", "pipeline", "feed"], help="one part (development)")
    parser.add_argument("--skip-feed", action="store_true", help="no bulk feed run (development)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the stacks (A/B runs of a setting)")
    args = parser.parse_args()
    BENCH_ENV.update(dict(kv.split("=", 1) for kv in args.env))
    PROFILE["on"] = args.profile
    sweep_s, e2e_s, sat_s, hop_msgs = (3, 8, 8, 20_000) if args.quick else (6, 15, 12, 50_000)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    machine: dict[str, Any] = {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                               "python": platform.python_version(), "stack_env": dict(BENCH_ENV),
                               "loadavg_start": [round(x, 2) for x in os.getloadavg()], "quick": args.quick}
    work = Path(os.environ.get("BENCH_WORK_DIR", "/tmp")) / f"pos-ingest-bench-{uuid.uuid4().hex[:6]}"
    deps = start_deps(work / "deps")
    s3_log = work / "deps" / "s3.log"
    raw: dict[str, Any] = {}
    try:
        if args.only in (None, "receiver"):
            raw["receiver_baseline"] = receiver_baseline(sweep_s)
            raw["receiver"] = receiver_stack(deps, work, sweep_s, s3_log)
        if args.only in (None, "pipeline"):
            raw["hops_baseline"] = hops_baseline(deps, hop_msgs)
            raw["pipeline"] = pipeline(deps, work, e2e_s, sat_s, s3_log)
        if args.only in (None, "feed"):
            raw["feed"] = feed(deps) if not args.skip_feed else \
                {"rows_per_s": None, "peak_rss_mb": None, "note": "skipped (--skip-feed)"}
    finally:
        deps.close()
    machine.update(loadavg_end=[round(x, 2) for x in os.getloadavg()], runtime_s=round(time.time() - started, 1),
                   finished_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    raw["machine"] = machine
    if args.only:
        (args.out / f"partial-{args.only}.json").write_text(json.dumps(raw, indent=2, default=str))
        log(f"partial results in {args.out}/partial-{args.only}.json")
        return 0
    summary = summarize(raw)
    raw["pipeline_samples"] = PIPELINE_SAMPLES  # lag per stage per second, phase marks, peak RSS
    lat = raw["pipeline"].pop("e2e_latencies_ms", [])
    (args.out / "latest.json").write_text(json.dumps({**summary, "raw": raw}, indent=2, default=str) + "\n")
    raw["pipeline"]["e2e_latencies_ms"] = lat
    plots(raw, args.out)
    text = markdown(summary)
    (args.out / "latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
