"""Pipeline baseline: five chained plain confluent-kafka pass-through hops (consume → produce) on the same broker.

``python bench/baseline_hops.py --bootstrap HOST:PORT --messages N`` prints one JSON line:
``{"messages": N, "throughput_rps": ..., "drain_rps": ..., "hops": 5, ...}`` — messages per second from the
first produce on hop 0 to the last message read off hop 5, and from the first message read off hop 5 to the
last (``drain_rps``: how ``make bench`` measures the pipeline's drain, so the two compare).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HOPS = 5


def _consumer(bootstrap: str, group: str, topic: str, partitions: int) -> Consumer:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "fetch.wait.max.ms": 20, "isolation.level": "read_committed"})
    # assign, not subscribe: no group join (half a session timeout on this broker) in the measurement
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    return c


def _producer(bootstrap: str) -> Producer:
    # the same producer settings the stages use, minus the transaction
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 2, "compression.type": "lz4"})


def hop(bootstrap: str, source: str, sink: str, partitions: int, group: str, ready: Any, stop: Any) -> None:
    consumer = _consumer(bootstrap, group, source, partitions)
    producer = _producer(bootstrap)
    ready.set()
    while not stop.is_set():
        msgs = consumer.consume(500, 0.05)
        for m in msgs:
            if m.error():
                continue
            while True:
                try:
                    producer.produce(sink, m.value(), m.key(), partition=m.partition())
                    break
                except BufferError:
                    producer.poll(0.05)
        if msgs:
            producer.flush(30)  # the batch is on the next topic before its offsets are committed
            try:
                consumer.commit(asynchronous=True)
            except Exception:  # noqa: BLE001 — a missed commit costs a re-read, not a lost message
                pass
        producer.poll(0)
    consumer.close()


def run(bootstrap: str, messages: int, size: int, partitions: int, timeout_s: float) -> dict[str, Any]:
    prefix = f"bench-hops-{uuid.uuid4().hex[:8]}."
    names = [f"{prefix}hop{i}" for i in range(HOPS + 1)]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1)
                                    for n in names]).values():
        fut.result()
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    workers, readies = [], []
    for i in range(HOPS):
        ready = ctx.Event()
        p = ctx.Process(target=hop, args=(bootstrap, names[i], names[i + 1], partitions, f"{prefix}g{i}", ready,
                                          stop), daemon=True)
        p.start()
        workers.append(p)
        readies.append(ready)
    try:
        for r in readies:
            r.wait(60)
        sink = _consumer(bootstrap, f"{prefix}sink", names[-1], partitions)
        producer = _producer(bootstrap)
        value = os.urandom(size)  # stands for an Avro record of the size the stages pass on
        started = time.perf_counter()
        for i in range(messages):
            while True:
                try:
                    producer.produce(names[0], value, f"k{i % 997}".encode())
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 1000 == 0:
                producer.poll(0)
        producer.flush(60)
        seen = 0
        first = last = started
        deadline = started + timeout_s
        while seen < messages and time.perf_counter() < deadline:
            for m in sink.consume(1000, 0.1):
                if not m.error():
                    seen += 1
                    last = time.perf_counter()
                    if seen == 1:
                        first = last
        sink.close()
        elapsed, span = last - started, last - first
        return {"messages": messages, "delivered": seen, "hops": HOPS, "elapsed_s": round(elapsed, 3),
                "throughput_rps": round(seen / elapsed, 1) if elapsed > 0 else None,
                # measured as the pipeline's drain is: first message out of the last hop to the last one
                "span_s": round(span, 3), "drain_rps": round((seen - 1) / span, 1) if span > 0 else None,
                "value_bytes": size, "partitions": partitions}
    finally:
        stop.set()
        for p in workers:
            p.join(10)
            if p.is_alive():
                p.kill()
        admin.delete_topics(names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=600)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    print(json.dumps(run(args.bootstrap, args.messages, args.size, args.partitions, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
