"""Bulk feed benchmark: a generated 100,000-row feed through a fresh ``pos-ingest up``; rows/s and peak RSS.

Rows/s is measured from the start of the upload to the last of the feed's commands read off
``catalog.commands`` (read_committed). Peak RSS is sampled every 0.2 s for every process of the
``pos-ingest up`` tree and the embedded broker/S3 server. ``--json`` adds one JSON line (``bench/run.py``
reads it). Dependencies come from ``KAFKA_BOOTSTRAP_SERVERS`` / ``S3_ENDPOINT_URL`` when set, else embedded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.stack: the same stack the e2e tests run

import psutil  # noqa: E402
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition  # noqa: E402

from bench.run import POSTGRES, postgres_cpu_seconds  # noqa: E402
from tests.feeds.helpers import SECRET, upload  # noqa: E402
from tests.stack import Stack, new_tenant, start_deps, start_stack  # noqa: E402

COMMANDS_PER_ROW = 4  # UpsertCatalogItem, UpsertVariant, UpdatePrice, UpdateStockLevel


def feed_rows(rows: int, *, chunk_rows: int = 2000) -> Iterator[bytes]:
    """A Google Merchant CSV, generated chunk by chunk (never whole in memory)."""
    yield b"id,title,description,brand,gtin,price,sale_price,availability,image_link\n"
    for start in range(0, rows, chunk_rows):
        yield "".join(
            f"SKU-{i:07d},\"Product {i}, size {i % 7}\",A plain product description for item {i},Brand {i % 50},"
            f"{4006381333931 + i},{(i % 900) + 1}.99 USD,,{'in_stock' if i % 10 else 'out_of_stock'},"
            f"https://img.example.com/{i}.jpg\n"
            for i in range(start, min(rows, start + chunk_rows))).encode()


class RssSampler(threading.Thread):
    """Peak RSS per process name: the ``pos-ingest up`` tree (services by name) and this script's children."""

    def __init__(self, stack: Stack, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.stack, self.interval = stack, interval
        self.peak: dict[str, float] = defaultdict(float)
        #: CPU seconds (user + system) per process name at the first and the latest sample
        self.cpu_first: dict[str, float] = {}
        self.cpu_last: dict[str, float] = {}
        self._halt = threading.Event()

    def _processes(self) -> dict[str, psutil.Process]:
        out: dict[str, psutil.Process] = {}
        roots = [psutil.Process(self.stack.proc.pid), psutil.Process(os.getpid())]
        for root in roots:
            try:
                children = root.children(recursive=True)
            except psutil.Error:
                continue
            for proc in children:
                try:
                    cmd = proc.cmdline()
                except psutil.Error:
                    continue
                if "run" in cmd and cmd.index("run") + 1 < len(cmd):
                    name = cmd[cmd.index("run") + 1]
                elif any("moto" in c for c in cmd):
                    name = "s3 (moto)"
                elif any("tansu" in c or "broker" in c for c in cmd):
                    name = "broker (tansu)"
                else:
                    name = Path(cmd[0]).name if cmd else str(proc.pid)
                out[f"{name}"] = proc
        out["pos-ingest up"] = roots[0]
        return out

    def run(self) -> None:
        procs = self._processes()
        refreshed = time.monotonic()
        while not self._halt.wait(self.interval):
            if time.monotonic() - refreshed > 2:  # a restarted child is a new process
                procs, refreshed = self._processes(), time.monotonic()
            for name, proc in procs.items():
                try:
                    self.peak[name] = max(self.peak[name], proc.memory_info().rss / 2**20)
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                self.cpu_first.setdefault(name, t.user + t.system)
                self.cpu_last[name] = t.user + t.system
            pg = postgres_cpu_seconds()
            self.cpu_first.setdefault(POSTGRES, pg)
            self.cpu_last[POSTGRES] = pg

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def cpu_ms_per(self, n: int) -> dict[str, float]:
        """CPU ms each process spent per unit of work (``n`` units), largest first."""
        used = {k: (self.cpu_last[k] - self.cpu_first[k]) * 1000 / max(n, 1) for k in self.cpu_last}
        return {k: round(v, 3) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v > 0}


class CommandCounter(threading.Thread):
    """Counts one rawId's records on catalog.commands; remembers when the last one arrived."""

    def __init__(self, bootstrap: str, topic: str, raw_id_box: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "feed-bench",
                                  "enable.auto.commit": False, "isolation.level": "read_committed",
                                  "fetch.wait.max.ms": 10})
        meta = self.consumer.list_topics(topic, timeout=10)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.topics[topic].partitions])
        self.box = raw_id_box
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        pending: list[bytes] = []
        while not self._halt.is_set():
            msgs = self.consumer.consume(2000, 0.05)
            now = time.time()
            target = self.box.get("rawId", "").encode()
            for m in msgs:
                if m.error():
                    continue
                raw = next((v for k, v in (m.headers() or []) if k == "raw-id"), b"")
                if not target:
                    pending.append(raw)  # the 202 is not back yet: decide once the rawId is known
                elif raw == target:
                    self.count += 1
                    self.first_at = self.first_at or now
                    self.last_at = now
            if target and pending:
                n = sum(1 for r in pending if r == target)
                if n:
                    self.count += n
                    self.first_at = self.first_at or now
                    self.last_at = now
                pending.clear()
        self.consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def bench(rows: int, timeout: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="feed-bench-"))
    deps = start_deps(work / "deps")
    gen = start_stack(deps, work)
    stack = next(gen)
    try:
        tenant = new_tenant(stack, auto_create=True)
        stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
        box: dict[str, str] = {}
        counter = CommandCounter(stack.kafka, stack.topic("catalog.commands"), box)
        sampler = RssSampler(stack)
        counter.start()
        sampler.start()
        expected = rows * COMMANDS_PER_ROW
        started = time.time()
        status, payload = upload(stack, tenant, feed_rows(rows), query="feed=bench")
        uploaded = time.time()
        if status != 202:
            raise RuntimeError(f"upload refused: {status} {payload}")
        box["rawId"] = payload["rawId"]
        deadline = time.time() + timeout
        parsed_at = None  # when the feeds worker had emitted every row (the rest is validator + command writer)
        while counter.count < expected and time.time() < deadline:
            time.sleep(0.1)
            if parsed_at is None and stack.query("SELECT 1 FROM feed_imports WHERE raw_id = $1::uuid AND state = "
                                                 "'done'", payload["rawId"]):
                parsed_at = time.time()
        sampler.stop()
        counter.stop()
        progress = json.loads(stack.cli("imports", "show", payload["rawId"]).stdout)
        elapsed = (counter.last_at or time.time()) - started
        peak = dict(sorted(sampler.peak.items(), key=lambda kv: -kv[1]))
        return {"rows": rows, "commands": counter.count, "commands_expected": expected,
                "complete": counter.count >= expected, "upload_s": round(uploaded - started, 2),
                "worker_done_s": round(parsed_at - started, 2) if parsed_at else None,
                "elapsed_s": round(elapsed, 2), "rows_per_s": round(rows / elapsed) if counter.count >= expected
                else None, "commands_per_s": round(counter.count / elapsed),
                "peak_rss_mb": round(max(peak.values()), 1) if peak else None,
                "peak_rss_by_process_mb": {k: round(v, 1) for k, v in peak.items()},
                "cpu_ms_per_row_by_process": sampler.cpu_ms_per(rows),
                "import": {k: progress[k] for k in ("state", "rowsDone", "rowsTotal", "commands", "failures")}}
    finally:
        try:
            next(gen)
        except StopIteration:
            pass
        deps.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for the last command")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    result = bench(args.rows, args.timeout)
    print(f"feed: {result['rows']:,} rows, {result['commands']:,}/{result['commands_expected']:,} commands, "
          f"upload {result['upload_s']} s, upload → last command {result['elapsed_s']} s")
    print(f"rows/s end to end: {result['rows_per_s'] or 'incomplete'} (target ≥ 20,000); "
          f"commands/s: {result['commands_per_s']:,}")
    print(f"peak RSS: largest {result['peak_rss_mb']} MB (target ≤ 250 MB)")
    for name, mb in result["peak_rss_by_process_mb"].items():
        print(f"  {name:<20} {mb:8.1f} MB")
    if args.json:
        print(json.dumps(result))
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
