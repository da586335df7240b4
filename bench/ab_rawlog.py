"""A/B of the raw log's group-commit window: receiver-only stacks, the same open-loop load, two RAWLOG_FLUSH_MS.

``python bench/ab_rawlog.py [--rate 500] [--seconds 8] [--windows 4,30]`` prints one JSON line per window:
S3 PUTs per 1,000 webhooks, latency percentiles, receiver CPU ms per request.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (BENCH_ENV, _close, _pids, cpu_ms_per_request, cpu_seconds, load, rawlog_totals,  # noqa: E402
                 tenant_names)

import psutil  # noqa: E402

from ingest.loadgen import Mix, setup_tenants  # noqa: E402
from tests.stack import start_deps, start_stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--windows", default="4,30")
    args = parser.parse_args()
    work = Path("/tmp") / f"pos-ingest-ab-{uuid.uuid4().hex[:6]}"
    deps = start_deps(work / "deps")
    try:
        for window in args.windows.split(","):
            gen = start_stack(deps, work, services=["receiver"], extra_env={**BENCH_ENV, "RAWLOG_FLUSH_MS": window})
            stack = next(gen)
            try:
                asyncio.run(setup_tenants(stack.dsn, tenant_names(), Mix()))
                load(stack.receiver, rate=None, seconds=2, concurrency=16)  # warm-up
                procs = {n: psutil.Process(p) for n, p in _pids(stack, ("receiver",)).items()}
                seg0, pay0 = rawlog_totals(stack.receiver)
                cpu0 = cpu_seconds(procs)
                r = load(stack.receiver, rate=args.rate, seconds=args.seconds)
                seg1, pay1 = rawlog_totals(stack.receiver)
                print(json.dumps({"rawlog_flush_ms": float(window), "offered_rps": args.rate,
                                  "puts_per_1000": round((seg1 - seg0) / max(1.0, pay1 - pay0) * 1000, 1),
                                  "cpu_ms_per_request": cpu_ms_per_request(cpu0, cpu_seconds(procs), r.ok),
                                  **{k: v for k, v in r.summary().items() if k.startswith("p") or k == "ok"}}),
                      flush=True)
            finally:
                _close(gen)
    finally:
        deps.close()


if __name__ == "__main__":
    main()
