"""The broker's CPU per Kafka transaction, by what the transaction holds: where a stage's per-batch cost goes.

``python bench/broker_txn_cost.py [--bootstrap HOST:PORT --broker-pid PID] [--transactions 100]
[--extra-topics N]`` measures the
broker process's CPU (user + system, read from /proc through psutil) around ``--transactions`` transactions of
each kind: offsets only (what a stage with no output commits), one record, one record and the consumer's
offsets (a stage's batch), records on 1, 2, 4, 8 and 12 partitions; and around plain consumer commits and
non-transactional produces for comparison. Without ``--bootstrap`` it starts an embedded broker
(``ingest.devstack.start_broker``) and measures that. Prints one line per kind and, with ``--json``, one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ingest.devstack import start_broker

PARTITIONS = 12
VALUE = b"v" * 300


def _topic(admin: AdminClient, partitions: int) -> str:
    name = f"txn-cost-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result()
    return name


def measure(bootstrap: str, broker: psutil.Process, transactions: int, extra_topics: int = 0) -> dict[str, float]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _ in range(extra_topics):  # a broker that holds other topics too (a test run's, another stack's)
        _topic(admin, 3)
    topic = _topic(admin, PARTITIONS)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4",
                         "transactional.id": topic})
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(transactions * 3):
        producer.produce(topic, VALUE, f"k{n}", partition=0)
    producer.commit_transaction(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    group = consumer.consumer_group_metadata()

    def offsets(n: int) -> list[TopicPartition]:
        return [TopicPartition(topic, 0, n + 1)]

    def cpu_ms_per(fn: Callable[[int], None]) -> float:
        before = sum(broker.cpu_times()[:2])
        for n in range(transactions):
            fn(n)
        return round((sum(broker.cpu_times()[:2]) - before) / transactions * 1000, 3)

    def txn(records: int = 0, partitions: int = 1, with_offsets: bool = False) -> Callable[[int], None]:
        def run(n: int) -> None:
            producer.begin_transaction()
            for r in range(records):
                producer.produce(topic, VALUE, "k", partition=r % partitions)
            if with_offsets:
                producer.send_offsets_to_transaction(offsets(n), group, 30)
            producer.commit_transaction(30)
        return run

    plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True, "acks": "all"})

    def plain_produce(n: int) -> None:
        plain.produce(topic, VALUE, "k", partition=0)
        plain.flush(30)

    out = {
        "offsets only": cpu_ms_per(txn(with_offsets=True)),
        "1 record": cpu_ms_per(txn(records=1)),
        "1 record + offsets": cpu_ms_per(txn(records=1, with_offsets=True)),
        **{f"{p} records on {p} partitions": cpu_ms_per(txn(records=p, partitions=p)) for p in (2, 4, 8, 12)},
        "no transaction: consumer commit": cpu_ms_per(lambda n: consumer.commit(offsets=offsets(n),
                                                                                asynchronous=False)),
        "no transaction: 1 idempotent produce, flushed": cpu_ms_per(plain_produce),
    }
    consumer.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--broker-pid", type=int, default=None)
    parser.add_argument("--transactions", type=int, default=100)
    parser.add_argument("--extra-topics", type=int, default=0, help="create this many 3-partition topics first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    embedded = None
    if args.bootstrap is None or args.broker_pid is None:
        embedded = start_broker(log_path=Path(tempfile.mkdtemp(prefix="txn-cost-")) / "broker.log")
        bootstrap, pid = embedded.url, embedded.proc.pid
    else:
        bootstrap, pid = args.bootstrap, args.broker_pid
    try:
        started = time.monotonic()
        result = measure(bootstrap, psutil.Process(pid), args.transactions, args.extra_topics)
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"broker CPU ms per operation ({args.transactions} each, {args.extra_topics} other topics, "
          f"{time.monotonic() - started:.0f} s):")
    for kind, ms in result.items():
        print(f"  {kind:<48} {ms:7.2f}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
