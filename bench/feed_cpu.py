"""The feeds worker's Python work per feed row, in process: no broker, S3 or PostgreSQL.

``python bench/feed_cpu.py [--rows N] [--repeat R] [--profile]`` parses a generated Google Merchant CSV
(``bench/feed_bench.py``'s ``feed_rows``: 4 commands per row) once, then per batch of ``feed_batch_rows``
records does what ``FeedWorker.run`` does between the parse and the Kafka transaction: the batch's mapping
context (``FeedWorker._context`` over an in-memory repository, auto-creating every key as a new feed does),
``translate_batch`` with the validator's rules, the ``Validated`` chunks and the row-failure records.
Prints CPU µs per row (minimum and all repeats) and a sha256 of every output (topic, key, value, headers),
so two trees can be compared: ``PYTHONPATH=/tmp/old/libs:/tmp/old python bench/feed_cpu.py``.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import pstats
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from bench.feed_bench import feed_rows  # noqa: E402
from ingest import feeds  # noqa: E402
from ingest.adapters.registry import product_feed  # noqa: E402
from ingest.canonical.mapping import TenantSettings  # noqa: E402
from ingest.pipeline import tenant_to_map  # noqa: E402
from services.feeds.settings import FeedsSettings  # noqa: E402
from services.feeds.worker import FeedWorker, check_for  # noqa: E402

RAW_ID = "00000000-0000-4000-8000-00000000feed"
TENANT = "benchfeed"


class MemoryRepo:
    """``PostgresMappingRepository.load`` / ``create`` over a dict (what the worker's ``_context`` calls)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str], str] = {}

    async def load(self, wanted: list[Any]) -> dict[Any, str]:
        return {w: self.rows[w] for w in wanted if w in self.rows}

    async def create(self, rows: list[Any], *, auto_created: bool) -> None:
        for *key, canonical in rows:
            self.rows.setdefault(tuple(key), canonical)  # type: ignore[arg-type]


def job() -> feeds.FeedJob:
    received = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    record = {"rawId": RAW_ID, "tenantId": TENANT, "provider": "google-merchant", "replayId": None,
              "dedupeKey": "google-merchant:sha256:x", "headers": {"Content-Type": "text/csv",
                                                                  "X-Feed-Name": "bench.csv"}}
    return feeds.FeedJob(RAW_ID, TENANT, "google-merchant", "default", "primary", "seg", 0, "text/csv",
                         "/v1/integrations/seller/google-merchant/import", received, "integration.deduped/0/7",
                         record)


def run_once(batches: list[list[Any]], settings: FeedsSettings, prof: cProfile.Profile | None = None
             ) -> tuple[float, str, int]:
    """(CPU seconds, sha256 of the outputs, commands) of one pass over ``batches`` with a fresh repository."""
    j = job()
    feed = product_feed(j.provider)
    tenant = TenantSettings(TENANT, auto_create_items=True, default_currency="USD")
    worker = SimpleNamespace(repo=MemoryRepo())
    options: dict[str, Any] = {}
    digest = hashlib.sha256()
    commands = 0
    loop = asyncio.new_event_loop()
    try:
        t = time.process_time()
        if prof:
            prof.enable()
        for batch in batches:
            ctx = loop.run_until_complete(FeedWorker._context(worker, j, tenant,  # type: ignore[arg-type]
                                                              feeds.batch_keys(feed, batch, options)))
            result = feeds.translate_batch(j, feed, batch, ctx, options, check_for(tenant))
            outputs = feeds.validated_outputs(j, result.records, tenant_to_map(tenant),
                                              max_commands=settings.feed_chunk_commands,
                                              max_bytes=settings.feed_chunk_bytes)
            outputs += [feeds.row_error_output(j, e) for e in result.errors]
            outputs += [feeds.unmapped_output(j, row, missing) for row, missing in result.unmapped]
            commands += len(result.records)
            for o in outputs:
                digest.update(f"{o.topic}|{o.key}|{sorted(o.headers.items())}|".encode() + o.value)
        if prof:
            prof.disable()
        elapsed = time.process_time() - t
    finally:
        loop.close()
    return elapsed, digest.hexdigest(), commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one pass, top 40 by own time")
    args = parser.parse_args()
    settings = FeedsSettings()
    j = job()
    t = time.process_time()
    records = list(product_feed(j.provider).records(feed_rows(args.rows), file=j.file, filename=j.file,
                                                    content_type=j.content_type))
    parse_s = time.process_time() - t
    size = settings.feed_batch_rows
    batches = [records[i:i + size] for i in range(0, len(records), size)]
    run_once(batches[:1], settings)  # warm-up: imports, codec writers
    if args.profile:
        prof = cProfile.Profile()
        run_once(batches, settings, prof)
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        return
    times, digests = [], set()
    commands = 0
    for _ in range(args.repeat):
        elapsed, digest, commands = run_once(batches, settings)
        times.append(elapsed)
        digests.add(digest)
    per_row = [1e6 * s / args.rows for s in times]
    print(f"ingest from {feeds.__file__}")
    print(f"rows {args.rows}, commands {commands}, parse {1e6 * parse_s / args.rows:.1f} µs/row (once)")
    print(f"translate+encode µs/row: min {min(per_row):.1f}  all {' '.join(f'{x:.1f}' for x in per_row)}")
    print(f"outputs sha256 {' '.join(sorted(digests))}")


if __name__ == "__main__":
    main()
