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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.run import SATURATION_CONNECTIONS, _close, cpu_seconds, load, tenant_names  # noqa: E402
from ingest.loadgen import Mix, setup_tenants  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=SATURATION_CONNECTIONS)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE passed to the stack")
    ap.add_argument("--profile", help="py-spy raw output file for the last round")
    args = ap.parse_args()
    extra = {"SWEEPER_INTERVAL_S": "5", "SWEEPER_GRACE_S": "10", "LOG_LEVEL": "INFO"}
    extra.update(kv.split("=", 1) for kv in args.env)
    work = Path(tempfile.mkdtemp(prefix="rxcpu-"))
    deps = start_deps(work / "deps")
    gen = start_stack(deps, work, services=["receiver"], extra_env=extra)
    stack = next(gen)
    try:
        asyncio.run(setup_tenants(stack.dsn, tenant_names(), Mix()))
        load(stack.receiver, rate=None, seconds=3, concurrency=16)  # warm-up
        time.sleep(0.5)
        procs = receiver_processes(stack.proc.pid)
        print(f"receiver processes: {len(procs)}", file=sys.stderr)
        rounds = []
        for i in range(args.rounds):
            spy = None
            if args.profile and i == args.rounds - 1:
                spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-r", "200", "--nonblocking", "-f",
                                        "raw", "-s", "-o", args.profile, "-d", str(int(args.seconds)),
                                        *sum((["-p", str(p.pid)] for p in procs.values()), [])[:2]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpu0 = sum(cpu_seconds(procs).values())
            r = load(stack.receiver, rate=None, seconds=args.seconds, concurrency=args.concurrency)
            cpu1 = sum(cpu_seconds(procs).values())
            statuses = r.summary()["by_status"]
            row = {"ok": r.ok, "rps": round(r.throughput_rps, 1),
                   "cpu_ms_per_req": round((cpu1 - cpu0) / max(1, r.ok) * 1000, 3),
                   "client_cpu_s": round(r.client_cpu_s, 1), "statuses": statuses}
            rounds.append(row)
            print(json.dumps(row), file=sys.stderr)
            if spy:
                spy.wait(args.seconds + 30)
        print(json.dumps({"env": args.env, "rounds": rounds,
                          "load": round(psutil.getloadavg()[0], 1)}))
    finally:
        _close(gen)
        deps.close()


if __name__ == "__main__":
    main()
