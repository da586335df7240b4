"""Where the stages' CPU goes on a backlog: per process *and per thread* (the event loop, librdkafka's
``rdk:*`` threads, executor threads…), over the bench's drain phase (dedupe paused while the receiver queues
``--messages`` webhooks, then resumed). ``--profile DIR`` py-spies every stage during the drain.

    .venv/bin/python bench/drain_threads.py [--messages 20000] [--env NAME=VALUE] [--profile /tmp/prof]
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.receiver_cpu import thread_cpu  # noqa: E402
from bench.run import (BENCH_ENV, STAGES, EventWatch, Sampler, _close, load, postgres_cpu_seconds, prom_samples,  # noqa: E402
                       scrape, stack_processes, tenant_names)
from ingest.loadgen import Mix, setup_tenants  # noqa: E402
from tests.stack import start_deps, start_stack  # noqa: E402


def batches(port: int) -> float:
    return sum(v for labels, v in prom_samples(scrape(f"http://127.0.0.1:{port}/metrics"),
                                              "pos_ingest_stage_batch_seconds_count"))


def statements(stack: Any, *, reset: bool = False, n: int = 1) -> list[dict[str, Any]]:
    """pg_stat_statements' top statements of the stack's database by execution time, per webhook (when the
    extension is loaded: ``shared_preload_libraries = 'pg_stat_statements'``; empty otherwise)."""
    try:
        if reset:
            stack.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            stack.query("SELECT pg_stat_statements_reset()")
            return []
        rows = stack.query(
            "SELECT calls, rows, total_exec_time + total_plan_time AS ms, left(query, 160) AS query "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database() ORDER BY 3 DESC LIMIT 15")
    except Exception:  # noqa: BLE001 — the extension is optional
        return []
    return [{"us_per_webhook": round(r["ms"] * 1000 / n, 1), "calls": r["calls"], "rows": r["rows"],
             "query": r["query"]} for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--profile")
    ap.add_argument("--rate", type=float, help="instead of a drain: open loop at this rate for --seconds, measured "
                    "from the first send to the last command")
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    env = {**BENCH_ENV, **dict(e.split("=", 1) for e in args.env)}
    work = Path(tempfile.mkdtemp(prefix="drain-"))
    deps = start_deps(work / "deps")
    gen = start_stack(deps, work, extra_env=env)
    stack = next(gen)
    commands = stack.topic("catalog.commands")
    watch = EventWatch(stack.kafka, [commands])
    try:
        asyncio.run(setup_tenants(stack.dsn, tenant_names(), Mix()))
        watch.start()
        warm = load(stack.receiver, rate=None, seconds=8, concurrency=8)
        watch.wait_for(commands, [a.raw_id for a in warm.acks], timeout=120)
        deps_ports = [int(u.rsplit(":", 1)[1]) for u in (stack.kafka, stack.env["S3_ENDPOINT_URL"])]
        procs = stack_processes(stack, deps_ports)
        stages = {s: procs[s] for s in (*STAGES, "broker", "receiver") if s in procs}
        if args.rate:
            before = {s: thread_cpu({s: p}) for s, p in stages.items()}
            ports = Sampler(stack, deps_ports).ports
            batches0 = {s: batches(port) for s, port in ports.items()}
            pg0 = postgres_cpu_seconds()
            statements(stack, reset=True)
            queued = load(stack.receiver, rate=args.rate, seconds=args.seconds)
        else:
            procs["dedupe"].suspend()
            try:
                queued = load(stack.receiver, rate=None, seconds=120, total=args.messages)
                deadline = time.time() + 60
                while stack.query("SELECT count(*) AS n FROM raw_payloads WHERE published_at IS NULL")[0]["n"] \
                        and time.time() < deadline:
                    time.sleep(0.2)
                before = {s: thread_cpu({s: p}) for s, p in stages.items()}
                ports = Sampler(stack, deps_ports).ports
                batches0 = {s: batches(port) for s, port in ports.items()}
                pg0 = postgres_cpu_seconds()
                statements(stack, reset=True)
            finally:
                procs["dedupe"].resume()
        spies = []
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            spy = str(Path(sys.executable).with_name("py-spy"))
            for s, p in stages.items():
                if s != "broker":
                    spies.append(subprocess.Popen([spy, "record", "-p", str(p.pid), "-d", "30", "-r", "200",
                                                   "--native", "--threads", "--idle", "-f", "raw",
                                                   "-o", f"{args.profile}/{s}.txt"],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        t0 = time.time()
        ids = [a.raw_id for a in queued.acks]
        watch.wait_for(commands, ids, timeout=300)
        elapsed = time.time() - t0
        after = {s: thread_cpu({s: p}) for s, p in stages.items()}
        batch_counts = {s: batches(port) - batches0[s] for s, port in ports.items()}
        pg = postgres_cpu_seconds() - pg0
        for sp in spies:
            sp.terminate()
        n = len(ids)
        out: dict[str, Any] = {"webhooks": n, "elapsed_s": round(elapsed, 2), "rps": round(n / elapsed, 1),
                               "postgres_ms_per_webhook": round(pg / n * 1000, 3), "batches": batch_counts,
                               "by_thread_us": {}}
        for s in stages:
            per = {k: round((after[s].get(k, 0) - before[s].get(k, 0)) / n * 1e6, 1) for k in after[s]
                   if not k.endswith(".sys")}
            per = {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 1}
            out["by_thread_us"][s] = {"total": round(sum(per.values()), 1), **per}
        out["statements"] = statements(stack, n=n)
        out["raw_payloads_updates"] = stack.query(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables "
            "WHERE relname LIKE 'raw_payloads%' AND n_tup_ins > 0")
        print(json.dumps(out, indent=1))
    finally:
        watch.stop()
        _close(gen)
        deps.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
