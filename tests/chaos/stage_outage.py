"""``python -m tests.chaos.stage_outage``: a stage's transactional commit right after the broker refused every
connection for a while, with the stage idle meanwhile. Prints one JSON line; run in a process of its own
because a wedged librdkafka call cannot be freed (tests/chaos/test_broker_semantics.py runs it).

Own broker behind a fault proxy; the real ``StageRunner`` commit path (``_commit``: produce + offsets in one
transaction). The stall watchdog is set high so that a wedge shows as a bounded wait here, not an exit.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ingest.devstack import free_port, start_broker
from ingest.kafka.results import Output, Result
from ingest.kafka.stage import StageRunner, StageSpec
from ingest.settings import StageSettings
from tests.chaos.faultproxy import FaultProxy


async def _never(inputs: list) -> list:  # type: ignore[type-arg]
    raise AssertionError("the handler is not used: the batch's outputs are given")


async def scenario(boot: str, proxy: FaultProxy, outage_s: float, wait_s: float) -> dict[str, object]:
    admin = AdminClient({"bootstrap.servers": boot})
    for fut in admin.create_topics([NewTopic("in", 1, 1), NewTopic("out", 1, 1)]).values():
        fut.result(10)
    feed = Producer({"bootstrap.servers": boot})
    settings = StageSettings(kafka_bootstrap_servers=boot, stage_instance_id="outage", batch_size=10,
                             kafka_stall_timeout_s=wait_s + 60, _env_file=None)  # type: ignore[call-arg]
    runner = StageRunner(StageSpec("outage", "in", None, _never), settings)
    await runner._txn_call(runner._txn.ready)
    runner._consumer.subscribe(["in"])

    async def one(value: bytes) -> float:
        feed.produce("in", value)
        feed.flush(10)
        msgs: list = []  # type: ignore[type-arg]
        deadline = time.monotonic() + 30
        while not msgs:
            assert time.monotonic() < deadline, "the input never arrived"
            msgs = [m for m in await runner._call(runner._next_batch) if not m.error()]
        pairs = [(None, None, Result(outputs=[Output("out", "k", b"out-" + m.value())])) for m in msgs]
        runner._records = lambda pairs: [o for _, _, r in pairs for o in r.outputs]  # type: ignore[method-assign]
        started = time.monotonic()
        await asyncio.wait_for(runner._commit(pairs, msgs), wait_s)
        return time.monotonic() - started

    first = await one(b"before")
    proxy.set_mode("refuse")
    await asyncio.sleep(outage_s)
    proxy.set_mode("pass")
    try:
        after = await one(b"after")
    except asyncio.TimeoutError:
        return {"first_s": first, "after_s": None, "stalled": True}
    committed = runner._consumer.committed([TopicPartition("in", 0)], 10)[0].offset
    return {"first_s": first, "after_s": after, "stalled": False, "committed": committed}


def main() -> None:
    outage_s, wait_s = float(sys.argv[1]), float(sys.argv[2])
    port = free_port()
    proxy = FaultProxy("127.0.0.1", port, name="kafka")
    broker = start_broker(port, log_path=Path(tempfile.mkdtemp()) / "broker.log", advertised_port=proxy.port)
    try:
        print(json.dumps(asyncio.run(scenario(proxy.url, proxy, outage_s, wait_s))), flush=True)
    finally:
        broker.stop()
        proxy.close()
        os._exit(0)  # a wedged librdkafka thread would block a normal exit


if __name__ == "__main__":
    main()
