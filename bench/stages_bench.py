"""The five stage handlers chained in one process on the load generator's mix, with in-memory ports.

``python bench/stages_bench.py [--messages N] [--batch B] [--profile]`` prints, per stage, the Python CPU per
message of what the shared runtime does around Kafka (decode → handler → failure/outcome records → encode),
without a broker or PostgreSQL: the part of each hop that is ours. ``--profile [STAGE]`` adds a cProfile top list.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import pstats
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Producer  # noqa: E402

from bench.fakes import FakeMessage  # noqa: E402
from ingest.adapters.registry import adapter_class  # noqa: E402
from ingest.avro import codec  # noqa: E402
from ingest.canonical.mapping import TenantSettings  # noqa: E402
from ingest.kafka.results import Output  # noqa: E402
from ingest.kafka.stage import StageRunner, StageSpec  # noqa: E402
from ingest.loadgen import Mix  # noqa: E402
from ingest.rawlog.publisher import raw_received  # noqa: E402
from ingest.settings import StageSettings  # noqa: E402
from services.command_writer.handler import handle as write  # noqa: E402
from services.dedupe.handler import handle as dedupe  # noqa: E402
from services.mapper.handler import handle as resolve  # noqa: E402
from services.transformer.handler import handle as transform  # noqa: E402
from services.validator.handler import handle as validate  # noqa: E402
from tests.unit.fakes import FakeBodies, FakeClaims, FakeMappings  # noqa: E402

TENANTS = [f"bench{i}" for i in range(4)]


def raw_messages(n: int) -> list[FakeMessage]:
    mix = Mix()
    out = []
    for seq in range(n):
        tenant = TENANTS[seq % len(TENANTS)]
        req = mix.request(seq, tenant)
        parts = req.path.strip("/").split("/")  # v1/integrations/{kind}/{provider}/webhooks/{family}
        kind, provider, family = parts[2], parts[3], parts[-1]
        raw_id = str(uuid.uuid4())
        rec = raw_received(raw_id=raw_id, tenant_id=tenant, provider=provider, kind=kind, family=family,
                           route="/" + "/".join(parts), received_at=datetime.now(timezone.utc),
                           content_type="application/json", headers={k.lower(): v for k, v in req.headers.items()},
                           sha256=hashlib.sha256(req.body).hexdigest(), size=len(req.body), segment_key="seg",
                           segment_offset=0, segment_length=len(req.body), body=req.body)
        out.append(FakeMessage("integration.raw", 0, seq, f"{tenant}:-:{provider}".encode(),
                               codec().encode("RawReceived", rec),
                               [("raw-id", raw_id.encode()), ("tenant-id", tenant.encode()),
                                ("provider", provider.encode()), ("type", b"RawReceived")]))
    return out


class Chain:
    def __init__(self) -> None:
        claims, written = FakeClaims(), FakeClaims()
        mappings = FakeMappings({t: TenantSettings(t, True) for t in TENANTS})
        bodies = FakeBodies()

        async def index(rows: list[dict[str, Any]]) -> None:
            return None

        self.stages = [
            ("dedupe", "integration.raw", "RawReceived", lambda i: dedupe(i, claims=claims, bodies=bodies)),
            ("mapper", "integration.deduped", "Deduped", lambda i: resolve(i, repo=mappings, bodies=bodies,
                                                                            index=index)),
            ("transformer", "integration.mapped", "Mapped", lambda i: transform(i, bodies=bodies)),
            ("validator", "integration.transformed", "Transformed", validate),
            ("command-writer", "integration.validated", "Validated", lambda i: write(i, written=written)),
        ]
        settings = StageSettings(kafka_bootstrap_servers="127.0.0.1:1")
        self.runners = []
        for name, topic, expect, handler in self.stages:
            runner = StageRunner.__new__(StageRunner)  # no Kafka clients: only decode/handle/records are timed
            runner.spec = StageSpec(name, topic, expect, handler)
            runner.settings, runner.stage = settings, name
            runner._stopping = asyncio.Event()
            self.runners.append(runner)

    async def hop(self, runner: StageRunner, msgs: list[FakeMessage]) -> list[Output]:
        inputs, poison = runner._decode(msgs)  # type: ignore[arg-type]
        results = await runner._handle(inputs)
        pairs = [(i, None, r) for i, r in zip(inputs, results)] + [(None, m, r) for m, r in poison]
        return runner._records(pairs)  # type: ignore[arg-type]


async def run(messages: int, batch: int, profile: str | None) -> dict[str, Any]:
    chain = Chain()
    msgs = raw_messages(messages)
    times = {name: 0.0 for name, *_ in chain.stages}
    counts = {name: 0 for name, *_ in chain.stages}
    prof = cProfile.Profile() if profile else None
    nxt_topics = ["integration.deduped", "integration.mapped", "integration.transformed", "integration.validated"]
    for start in range(0, len(msgs), batch):
        current: list[FakeMessage] = msgs[start:start + batch]
        for n, runner in enumerate(chain.runners):
            counts[runner.stage] += len(current)
            if prof and profile in ("all", runner.stage):
                prof.enable()
            t = time.process_time()
            outputs = await chain.hop(runner, current)
            times[runner.stage] += time.process_time() - t
            if prof:
                prof.disable()
            if n < len(nxt_topics):
                current = [FakeMessage(nxt_topics[n], 0, start + k, o.key.encode(), o.value,
                                       [(h, v.encode()) for h, v in o.headers.items()])
                           for k, o in enumerate(outputs) if o.topic == nxt_topics[n]]
    out = {name: round(times[name] / max(counts[name], 1) * 1e6, 1) for name in times}
    out["total_us_per_webhook"] = round(sum(times.values()) / messages * 1e6, 1)
    if prof:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(35)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", nargs="?", const="all", help="cProfile one stage (or all)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.batch, args.profile))))


if __name__ == "__main__":
    main()
