"""Receiver CPU per request under closed-loop saturation (the figure to optimise on a shared machine).

Brings up the embedded broker/S3 and one ``pos-ingest up --services receiver`` stack (as ``bench/run.py``'s
receiver phase), warms it up, then runs ``--rounds`` closed-loop rounds of ``--seconds`` each and prints, per
round, acknowledged requests, throughput and the receiver processes' CPU ms per request (user + system, from
psutil before/after; a busy machine slows a process, it does not add to its CPU time). ``--profile FILE``
records the receiver with py-spy (raw format) during the last round. Writes nothing under bench/results/.

    .venv/bin/python bench/receiver_cpu.py --rounds 3 --seconds 8 [--env RECEIVER_WORKERS=2] [--profile /tmp/p.txt]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.run import (SATURATION_CONNECTIONS, _close, cpu_seconds, load, prom_samples, rawlog_totals, scrape,
                       tenant_names)  # noqa: E402
from ingest.devstack import free_port, wait_port  # noqa: E402
from ingest.loadgen import LoadResult, Mix, setup_tenants  # noqa: E402
from tests.stack import start_deps, start_stack  # noqa: E402


def receiver_processes(stack_pid: int) -> dict[str, psutil.Process]:
    """The stack's ``pos-ingest run receiver`` process and its children (worker processes, if any)."""
    out = {}
    for child in psutil.Process(stack_pid).children(recursive=True):
        try:
            if child.cmdline()[-2:] == ["run", "receiver"]:
                out.update({f"receiver-{p.pid}": p for p in [child, *child.children(recursive=True)]})
        except psutil.Error:
            continue
    return out


PYSPY_FLAGS = os.environ.get("PYSPY_FLAGS", "--nonblocking").split()
_NAMES: dict[int, dict[int, str]] = {}


def python_thread_names(pid: int) -> dict[int, str]:
    """OS thread id → Python thread name (py-spy dump, once per process; Python does not name OS threads)."""
    if pid not in _NAMES:
        out = subprocess.run([str(Path(sys.executable).with_name("py-spy")), "dump", "--nonblocking", "-p", str(pid)],
                             capture_output=True, text=True).stdout
        _NAMES[pid] = {int(m.group(1), 0): m.group(2).rstrip("0123456789_")
                       for m in re.finditer(r'Thread (\S+) \(\w+\): "([^"]+)"', out)}
    return _NAMES[pid]


def thread_cpu(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds by thread name (``/proc/PID/task/TID/comm``: the event loop, ``s3_*``, ``raw-publisher-p``,
    librdkafka's ``rdk:*`` threads…), summed over the processes."""
    out: dict[str, float] = {}
    for proc in procs.values():
        names = python_thread_names(proc.pid)
        try:
            threads = proc.threads()
        except psutil.Error:
            continue
        for t in threads:
            try:
                name = Path(f"/proc/{proc.pid}/task/{t.id}/comm").read_text().strip()
            except OSError:
                continue
            name = names.get(t.id) or name.rstrip("0123456789_") or name
            out[name] = out.get(name, 0.0) + t.user_time + t.system_time
            out[name + ".sys"] = out.get(name + ".sys", 0.0) + t.system_time
    return out


def flushes(base: str) -> tuple[float, float, float]:
    """(segments, payloads, flush seconds) so far, from the receiver's raw-log histograms (zeros for the
    baseline, which has none)."""
    text = scrape(base + "/metrics")
    segments, payloads = rawlog_totals(base)
    return segments, payloads, sum(v for _, v in prom_samples(text, "pos_ingest_rawlog_flush_seconds_sum"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=SATURATION_CONNECTIONS)
    ap.add_argument("--rate", type=float, action="append", help="open loop at this rate (repeatable: one round "
                    "per rate) instead of closed-loop rounds; 0 = idle, -1 = a closed-loop round")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE passed to the stack")
    ap.add_argument("--profile", help="py-spy raw output file for the last round")
    ap.add_argument("--baseline", action="store_true", help="bench/baseline_receiver.py instead of the stack")
    args = ap.parse_args()
    extra = {"SWEEPER_INTERVAL_S": "5", "SWEEPER_GRACE_S": "10", "LOG_LEVEL": "INFO"}
    extra.update(kv.split("=", 1) for kv in args.env)
    if args.baseline:
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "baseline_receiver.py"), "--port", str(port)],
                                stdout=subprocess.DEVNULL)
        try:
            wait_port(port, 30, proc)
            measure(args, f"http://127.0.0.1:{port}", {"baseline": psutil.Process(proc.pid)})
        finally:
            proc.terminate()
            proc.wait(10)
        return
    work = Path(tempfile.mkdtemp(prefix="rxcpu-"))
    deps = start_deps(work / "deps")
    gen = start_stack(deps, work, services=["receiver"], extra_env=extra)
    stack = next(gen)
    try:
        asyncio.run(setup_tenants(stack.dsn, tenant_names(), Mix()))
        measure(args, stack.receiver, None, stack.proc.pid)
    finally:
        _close(gen)
        deps.close()


def measure(args: argparse.Namespace, base: str, procs: dict[str, psutil.Process] | None,
            stack_pid: int | None = None) -> None:
    load(base, rate=None, seconds=3, concurrency=16)  # warm-up
    time.sleep(0.5)
    procs = procs or receiver_processes(stack_pid or 0)
    print(f"receiver processes: {len(procs)}", file=sys.stderr)
    rounds = []
    plan: list[float | None] = [r if r >= 0 else None for r in args.rate] if args.rate else [None] * args.rounds
    for i, rate in enumerate(plan):
        spy = None
        if args.profile and i == len(plan) - 1:
            first = next(iter(procs.values())).pid  # -s: its worker children too
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-r", "200",
                                    *PYSPY_FLAGS, "-f", "raw", "-s", "-o", args.profile, "-d",
                                    str(int(args.seconds)), "-p", str(first)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0, threads0, flush0 = sum(cpu_seconds(procs).values()), thread_cpu(procs), flushes(base)
        if rate == 0:
            time.sleep(args.seconds)
            r = LoadResult(elapsed_s=args.seconds)
        else:
            r = load(base, rate=rate, seconds=args.seconds, concurrency=args.concurrency)
        cpu1, threads1, flush1 = sum(cpu_seconds(procs).values()), thread_cpu(procs), flushes(base)
        segments, seconds = flush1[0] - flush0[0], flush1[2] - flush0[2]
        statuses = r.summary()["by_status"]
        row = {"rate": rate, "ok": r.ok, "cpu_ms_per_s": round((cpu1 - cpu0) / args.seconds * 1000, 1), "rps": round(r.throughput_rps, 1),
               "cpu_ms_per_req": round((cpu1 - cpu0) / max(1, r.ok) * 1000, 3),
               "client_cpu_s": round(r.client_cpu_s, 1), "statuses": statuses,
               "p50_ms": r.summary()["p50_ms"], "p99_ms": r.summary()["p99_ms"],
               "per_segment": round((flush1[1] - flush0[1]) / segments, 1) if segments else None,
               "flush_ms": round(seconds / segments * 1000, 1) if segments else None,
               "threads_cpu_ms_per_req": {k: round((v - threads0.get(k, 0.0)) / max(1, r.ok) * 1000, 3)
                                          for k, v in sorted(threads1.items())
                                          if v - threads0.get(k, 0.0) > 0.001}}
        rounds.append(row)
        print(json.dumps(row), file=sys.stderr)
        if spy:
            spy.wait(args.seconds + 30)
    print(json.dumps({"env": args.env, "rounds": rounds,
                      "load": round(psutil.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
