"""``run_stage`` against the real broker: routing, poison records, retries, one copy of each output."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ingest.avro import codec
from ingest.errors import DependencyUnavailable, InvalidCommand, UnsupportedEvent
from ingest.kafka.results import Input, Output, Result
from ingest.kafka.stage import StageRunner, StageSpec
from ingest.settings import StageSettings
from tests.stack import consume

pytestmark = pytest.mark.integration


def _failure_like(n: int) -> bytes:
    """Any registered schema works as a test input; FailureRecord is small."""
    return codec().encode("FailureRecord", {"failureId": f"in-{n}", "class": "processing", "stage": "test",
                                            "reasonCode": str(n), "message": f"m{n}", "rawId": str(uuid.uuid4()),
                                            "tenantId": "t", "provider": "p",
                                            "occurredAt": datetime.now(timezone.utc)})


def _topics(settings: StageSettings, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    futures = admin.create_topics([NewTopic(settings.topic(n), 2, 1) for n in names])
    for f in futures.values():
        f.result()


async def _run_until(runner: StageRunner, done: "asyncio.Future[None]", timeout: float = 60) -> None:
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


async def test_outputs_failures_skips_and_poison_are_routed_and_committed(settings_env: dict) -> None:  # type: ignore[type-arg]
    settings = StageSettings(batch_size=50)
    _topics(settings, "test.in", "test.out", "integration.failures", "integration.outcomes")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for n in range(30):
        producer.produce(settings.topic("test.in"), key=f"k{n % 3}", value=_failure_like(n))
    producer.produce(settings.topic("test.in"), key="poison", value=b"\x00not avro at all")
    producer.flush(10)
    seen: list[int] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(inputs: list[Input]) -> list[Result]:
        out = []
        for inp in inputs:
            n = int(inp.record["reasonCode"])
            seen.append(n)
            if n % 10 == 3:
                out.append(Result.fail(InvalidCommand("bad", reason_code="bad_three")))
            elif n % 10 == 7:
                raise UnsupportedEvent("seven is skipped")  # isolates the batch, then skips this one
            else:
                out.append(Result(outputs=[Output("test.out", inp.key or "", inp.record["rawId"].encode())]))
        if len(set(seen)) >= 30 and not done.done():
            done.set_result(None)
        return out

    runner = StageRunner(StageSpec("rt", "test.in", None, handler), settings)
    await _run_until(runner, done)
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"v-{uuid.uuid4()}",
                  "isolation.level": "read_committed"})
    c.assign([TopicPartition(settings.topic("test.out"), p, OFFSET_BEGINNING) for p in (0, 1)])
    values = []
    for _ in range(50):
        values += [m.value() for m in c.consume(100, 0.2) if not m.error()]
        if len(values) >= 24:
            break
    c.close()
    assert len(values) == 24 and len(set(values)) == 24  # every good input exactly once
    failures = consume(settings.kafka_bootstrap_servers, settings.topic("integration.failures"),
                       until=lambda r: len(r) >= 4, timeout=20)
    classes = sorted((f["class"], f["reasonCode"]) for f in failures)
    assert classes == [("processing", "undecodable_record")] + [("validation", "bad_three")] * 3
    poison = next(f for f in failures if f["reasonCode"] == "undecodable_record")
    assert poison["originTopic"] == settings.topic("test.in") and poison["originOffset"] is not None
    outcomes = consume(settings.kafka_bootstrap_servers, settings.topic("integration.outcomes"),
                       until=lambda r: len(r) >= 3, timeout=20)
    assert sorted(o["reason"] for o in outcomes) == ["unsupported_event"] * 3
    # offsets were committed with the outputs: a new runner of the same group finds nothing to do
    again: list[int] = []

    async def count(inputs: list[Input]) -> list[Result]:
        again.extend(1 for _ in inputs)
        return [Result() for _ in inputs]

    idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(8, lambda: idle.done() or idle.set_result(None))
    await _run_until(StageRunner(StageSpec("rt", "test.in", None, count), settings), idle)
    assert again == []


async def test_retriable_error_blocks_and_retries_without_dead_letters(settings_env: dict) -> None:  # type: ignore[type-arg]
    settings = StageSettings(batch_size=10, retry_backoff_max_s=0.5)
    _topics(settings, "retry.in", "retry.out", "integration.failures", "integration.outcomes")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for n in range(5):
        producer.produce(settings.topic("retry.in"), value=_failure_like(n))
    producer.flush(10)
    calls = {"n": 0}
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    processed: set[int] = set()

    async def flaky(inputs: list[Input]) -> list[Result]:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise DependencyUnavailable("database restarting")
        processed.update(int(i.record["reasonCode"]) for i in inputs)
        if len(processed) == 5 and not done.done():
            done.set_result(None)
        return [Result(outputs=[Output("retry.out", "k", b"ok")]) for _ in inputs]

    await _run_until(StageRunner(StageSpec("retry", "retry.in", None, flaky), settings), done)
    assert processed == {0, 1, 2, 3, 4} and calls["n"] >= 4
    failures = consume(settings.kafka_bootstrap_servers, settings.topic("integration.failures"),
                       until=lambda r: False, timeout=3)
    assert failures == []
