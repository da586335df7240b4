"""Notification-triggered pulls: the poller reads ``integration.raw`` with a consumer group of its own.

Why ``integration.raw`` (and not the deduped topic or the outcomes): the notification carries no data, so
there is nothing to deduplicate, and reading the raw topic needs no change to any stage. Offsets are committed
only after the refetch is recorded in ``poll_sources`` (at least once: a repeated notification only pulls
again, and the dedupe stage absorbs a repeated document).
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Message

from ingest import topics
from ingest.avro import codec
from ingest.db.pool import PG_OUTAGE
from ingest.errors import DependencyUnavailable
from ingest.kafka.results import Input
from ingest.pipeline import deliveries
from services.poller.handler import NOTIFYING, notification_refetches

if TYPE_CHECKING:
    from services.poller.app import Poller

log = logging.getLogger(__name__)


class PollerConsumer:
    """A consumer group of the poller's own (read_committed): ``handle`` records a batch, then its offsets are
    committed; while the database or object storage is down the same batch is handled again."""

    def __init__(self, poller: Poller, *, group: str, topic_names: list[str]) -> None:
        s = poller.settings
        self.poller = poller
        self.topics = [s.topic(t) for t in topic_names]
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{group}-kafka")
        self._consumer = Consumer({
            "bootstrap.servers": s.kafka_bootstrap_servers, "group.id": f"{s.topic_prefix}{group}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "session.timeout.ms": s.session_timeout_ms, "heartbeat.interval.ms": max(500, s.session_timeout_ms // 3),
            "max.poll.interval.ms": 1800000, "fetch.wait.max.ms": 50,
        })

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def handle(self, messages: list[Message]) -> int:
        """Record what the batch asks for; the count is logged."""
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        await self._call(self._consumer.subscribe, self.topics)
        try:
            while not stop.is_set():
                messages = await self._call(self._consumer.consume, 200, 0.5)
                if not messages:
                    continue
                while not stop.is_set():
                    try:
                        recorded = await self.handle(messages)
                        break
                    except (DependencyUnavailable, *PG_OUTAGE) as exc:
                        log.warning("%s: batch not recorded yet (%s); retrying", type(self).__name__, exc)
                        await asyncio.sleep(1.0)
                else:
                    return  # stopping before it was recorded: not committed, so read again next time
                if recorded:
                    log.info("%s: recorded %d", type(self).__name__, recorded)
                await self._call(lambda: self._consumer.commit(asynchronous=False))
        finally:
            await self._call(self._consumer.close)
            self._io.shutdown(wait=False)


class NotificationConsumer(PollerConsumer):
    def __init__(self, poller: Poller) -> None:
        super().__init__(poller, group="pos-ingest-poller", topic_names=[topics.RAW])

    async def handle(self, messages: list[Message]) -> int:
        inputs = []
        for msg in messages:
            if msg.error() or msg.value() is None:
                continue
            provider = next((v for k, v in msg.headers() or [] if k == "provider"), None)
            if provider is not None and provider.decode(errors="replace") not in NOTIFYING:
                continue  # most of the traffic: skipped without decoding (a record without the header is decoded)
            try:
                schema, record = codec().decode(msg.value())
            except Exception:  # noqa: BLE001 — a value we cannot decode is the dedupe stage's poison, not ours
                continue
            if record.get("provider") in NOTIFYING and not str(record.get("route", "")).startswith("pull"):
                inputs.append(Input(topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
                                    key=None, headers={}, schema=schema, record=record))
        found = notification_refetches(await deliveries(inputs, self.poller.store)) if inputs else []
        return await self.poller.schedule_refetch(found)
