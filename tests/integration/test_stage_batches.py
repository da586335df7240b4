"""A stage's batch grows up to ``batch_size`` messages or ``batch_max_bytes`` of values, whichever comes first,
on the real broker; what is not taken is the next batch's, in order, nothing skipped."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ingest.kafka.stage import StageRunner, StageSpec
from ingest.settings import StageSettings
from tests.stack import Deps


async def _unused(inputs: list) -> list:  # type: ignore[type-arg]
    raise AssertionError("only the batching is exercised")


def _runner(kafka: str, topic: str, **settings: object) -> StageRunner:
    config = StageSettings(kafka_bootstrap_servers=kafka, stage_instance_id=f"batches-{uuid.uuid4().hex[:6]}",
                           _env_file=None, **settings)  # type: ignore[call-arg]
    runner = StageRunner(StageSpec(f"batches-{uuid.uuid4().hex[:8]}", topic, None, _unused), config)
    runner._consumer.subscribe([topic])
    return runner


def _batches(runner: StageRunner, expected: int) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    seen = 0
    deadline = time.monotonic() + 60
    while seen < expected:
        assert time.monotonic() < deadline, f"only {seen} of {expected} messages read"
        batch = [m.value() for m in runner._next_batch() if not m.error()]
        if batch:
            out.append(batch)
            seen += len(batch)
    return out


@pytest.fixture
def topic(deps: Deps) -> str:
    name = f"batches-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": deps.kafka})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(10)
    return name


def _produce(kafka: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": kafka, "linger.ms": 20, "message.max.bytes": 2_000_000})
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0


def test_given_large_values_when_batched_then_each_batch_stops_at_the_byte_budget(deps: Deps,
                                                                                  topic: str) -> None:
    values = [bytes([n]) * 100_000 for n in range(40)]  # 4 MB in all
    _produce(deps.kafka, topic, values)
    runner = _runner(deps.kafka, topic, batch_size=500, batch_max_bytes=1_000_000)
    batches = _batches(runner, len(values))
    runner._consumer.close()
    assert [v for b in batches for v in b] == values  # in order, none skipped or repeated
    # the budget is reached at the batch's mean size: at most one value over it
    assert all(sum(map(len, b)) <= 1_000_000 + 100_000 for b in batches)
    assert max(sum(map(len, b)) for b in batches) >= 1_000_000  # and batches do fill up to it
    assert len(batches) >= 4


def test_given_small_values_when_batched_then_batch_size_bounds_them(deps: Deps, topic: str) -> None:
    values = [f"v{n}".encode() for n in range(300)]
    _produce(deps.kafka, topic, values)
    runner = _runner(deps.kafka, topic, batch_size=120)
    batches = _batches(runner, len(values))
    runner._consumer.close()
    assert [v for b in batches for v in b] == values
    assert max(map(len, batches)) == 120
