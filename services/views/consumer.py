"""The views' Kafka loop: consume a batch (read_committed) → plan → one atomic Redis write → commit offsets.

Offsets are committed only after Redis holds the batch, and every view entry remembers what it applied, so
at-least-once delivery applies each event exactly once. A Redis outage blocks the loop (backoff, same
batch, nothing skipped). A rebuild (``ViewStore.start_rebuild``) bumps the epoch; the loop notices within
``views_epoch_check_s`` and re-reads every partition it owns from the beginning into the new generation.

The loop is synchronous and runs in a thread of its own: librdkafka calls ``on_assign`` from inside
``consume()``, and that callback must read Redis before it hands the partitions their start offsets.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from bisect import bisect_left
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from ingest.avro import DecodeError, codec
from ingest.errors import Retriable
from ingest.kafka.stage import consumer_config, next_offsets, record_lag, transport_error
from ingest.observability import metrics
from services.views.handler import VIEW_TOPICS, Event, Keys, Plan
from services.views.settings import ViewsServiceSettings
from services.views.store import ViewStore

log = logging.getLogger(__name__)
STAGE = "views"


class Stopping(Exception):
    """Raised out of a blocked retry when the service is asked to stop."""


class ViewsConsumer:
    def __init__(self, settings: ViewsServiceSettings, store: ViewStore, *, kafka: Consumer | None = None) -> None:
        """``kafka``: the Kafka client to use instead of one from ``settings`` (benches and tests, no broker)."""
        self.settings = settings
        self.store = store
        self.topics = {settings.topic(t): t for t in VIEW_TOPICS}
        if kafka is None:
            instance = settings.stage_instance_id or f"{socket.gethostname()}-{os.getpid()}"
            kafka = Consumer(consumer_config(settings, STAGE, instance))
        self.consumer = kafka
        self.stopping = threading.Event()
        self.epoch: int | None = None
        self._rewind: set[tuple[str, int]] = set()
        self.applied = 0
        self._last_epoch_check = 0.0
        self._last_lag = 0.0

    # --- lifecycle --------------------------------------------------------------------------------
    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        self.consumer.subscribe(list(self.topics), on_assign=self._on_assign)
        log.info("views consuming %s", ", ".join(self.topics))
        try:
            while not self.stopping.is_set():
                msgs = self.consumer.consume(self.settings.batch_size, self.settings.poll_timeout_s)
                msgs = [m for m in msgs if m.error() is None or not transport_error(m, STAGE)]
                rewound = self._follow_epoch()
                if rewound:
                    msgs = [m for m in msgs if (m.topic(), m.partition()) not in rewound]
                if msgs:
                    self._process(msgs)
                if time.monotonic() - self._last_lag > self.settings.views_lag_interval_s:
                    self._last_lag = time.monotonic()
                    record_lag(self.consumer, STAGE)
        except Stopping:
            pass
        finally:
            self.consumer.close()

    # --- retries ----------------------------------------------------------------------------------
    def _blocking(self, fn: Any) -> Any:
        """``fn()`` until it stops raising ``Retriable`` (Redis down), backing off; never gives up."""
        backoff = 0.2
        while True:
            try:
                result = fn()
                child(metrics.STAGE_RETRYING, STAGE).set(0)
                return result
            except Retriable as exc:
                metrics.STAGE_RETRYING.labels(STAGE).set(1)
                log.warning("views blocked on a dependency, retrying in %.1fs: %s", backoff, exc.message)
                if self.stopping.wait(backoff):
                    raise Stopping() from exc
                backoff = min(backoff * 2, self.settings.retry_backoff_max_s)

    # --- generations (rebuilds) -------------------------------------------------------------------
    def _short(self, topic: str, partition: int) -> str:
        return f"{self.topics[topic]}:{partition}"

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions whose applied offsets belong to an older generation start from the beginning."""
        epoch, parts = self._blocking(lambda: (self.store.epoch(), self.store.partition_epochs()))
        self.epoch = epoch
        self._last_epoch_check = time.monotonic()
        self._rewind.clear()  # the assignment below sets every start offset
        for tp in partitions:
            if parts.get(self._short(tp.topic, tp.partition)) != epoch:
                tp.offset = OFFSET_BEGINNING
        log.info("views assigned %d partition(s), epoch %d, %d re-read from the beginning", len(partitions),
                 epoch, sum(tp.offset == OFFSET_BEGINNING for tp in partitions))
        consumer.assign(partitions)

    def _follow_epoch(self, force: bool = False) -> set[tuple[str, int]]:
        """If a rebuild started, rewind every owned partition not yet in the new generation.

        Returns the partitions whose messages in hand must be dropped (rewound now, or still to rewind).
        """
        due = time.monotonic() - self._last_epoch_check >= self.settings.views_epoch_check_s
        if force or due:
            self._last_epoch_check = time.monotonic()
            epoch = self._blocking(self.store.epoch)
            if epoch != self.epoch:
                parts = self._blocking(self.store.partition_epochs)
                self._rewind |= {(tp.topic, tp.partition) for tp in self.consumer.assignment()
                                 if parts.get(self._short(tp.topic, tp.partition)) != epoch}
                log.info("views epoch %s → %d: %d partition(s) re-read from the beginning", self.epoch, epoch,
                         len(self._rewind))
                self.epoch = epoch
        if not self._rewind:
            return set()
        dropped = set(self._rewind)
        for topic, partition in dropped:
            try:
                self.consumer.seek(TopicPartition(topic, partition, OFFSET_BEGINNING))
                self._rewind.discard((topic, partition))
            except KafkaException as exc:
                # not fetching yet (just assigned): seek on the next pass, drop its messages until then
                log.warning("views: cannot rewind %s[%d] yet: %s", topic, partition, exc)
        return dropped

    # --- one batch --------------------------------------------------------------------------------
    def _decode(self, msgs: list[Message]) -> list[Event]:
        """The messages' events (an undecodable one is counted, logged and skipped)."""
        events = []
        topics, decode = self.topics, codec().decode
        for m in msgs:
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            try:
                schema, record = decode(m.value() or b"")
            except DecodeError as exc:
                # the views only read; the topic's writer owns dead letters. Count it, say it, move on.
                metrics.STAGE_MESSAGES.labels(STAGE, "unknown", "failed").inc()
                log.error("undecodable record on %s[%d]@%d: %s", topic, partition, offset, exc)
                continue
            events.append(Event(topics[topic], partition, offset, schema, record))
        return events

    def _process(self, msgs: list[Message]) -> None:
        started = time.perf_counter()
        events = self._decode(msgs)
        while events:
            assert self.epoch is not None
            keys = Keys(self.store.base, self.epoch)
            outcome, batch = self._blocking(
                lambda: self.store.apply(events, keys, recent=self.settings.views_recent_commands))
            if outcome == 0:
                self._count(batch, events)
                break
            if outcome == -1:  # a rebuild started between plan and write
                rewound = self._follow_epoch(force=True)
                events = [e for e in events if (self.settings.topic(e.topic), e.partition) not in rewound]
                msgs = [m for m in msgs if (m.topic(), m.partition()) not in rewound]
                continue
            # another replica wrote one of these slots (a rebalance hand-over): read again, plan again
            log.info("views: slot changed under the batch, planning again")
        self._commit(msgs)
        child(metrics.STAGE_BATCH, STAGE).observe(time.perf_counter() - started)

    def _count(self, batch: Plan, events: list[Event]) -> None:
        for topic, n in batch.applied.items():
            child(metrics.VIEWS_APPLIED, topic).inc(n)
        for (provider, outcome), n in batch.outcomes.items():
            child(metrics.STAGE_MESSAGES, STAGE, provider, outcome).inc(n)
        for ev, exc in batch.rejected:
            log.error("views cannot apply %s %s: %s", ev.schema, ev.record.get("commandId"), exc,
                      extra={"rawId": ev.record.get("rawId"), "topic": ev.topic, "offset": ev.offset})
        now = datetime.now(timezone.utc)
        # a feed's events share their receivedAt: one latency per distinct time
        received = Counter([ev.record.get("receivedAt") for ev in events])
        observe_many(child(metrics.STAGE_LATENCY, STAGE),
                     [(max(0.0, (now - at).total_seconds()), n) for at, n in received.items()
                      if isinstance(at, datetime)])
        self.applied += sum(batch.applied.values())

    def _commit(self, msgs: list[Message]) -> None:
        if not msgs:
            return
        try:
            self.consumer.commit(offsets=next_offsets(msgs), asynchronous=False)
        except KafkaException as exc:
            # Redis already holds the batch; whoever reads these offsets again finds them applied
            log.warning("views offset commit failed (will be re-read and skipped as applied): %s", exc)


#: metric children by (metric, label values): ``labels()`` takes a lock and builds its key on every call, and the
#: loop updates ~7 children per batch. Their label values are few (stage, topics, providers × outcomes).
_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per process."""
    found = _CHILDREN.get((metric, labels))
    if found is None:
        found = _CHILDREN[(metric, labels)] = metric.labels(*labels)
    return found


def observe_many(histogram: Any, amounts: list[tuple[float, int]]) -> None:
    """``histogram.observe(amount)`` ``n`` times for each ``(amount, n)``, as one update per bucket and one of the sum.

    Reaches into prometheus_client's ``Histogram`` child (``_upper_bounds``, ``_buckets``, ``_sum``: what its own
    ``observe`` updates, bucket ``i`` being the first whose bound is ≥ the amount); a histogram without them is
    observed one amount at a time.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    if bounds is None or not hasattr(histogram, "_buckets") or not hasattr(histogram, "_sum"):
        for amount, n in amounts:
            for _ in range(n):
                histogram.observe(amount)
        return
    counts: dict[int, int] = {}
    total = 0.0
    for amount, n in amounts:
        i = bisect_left(bounds, amount)
        counts[i] = counts.get(i, 0) + n
        total += amount * n
    if not counts:
        return
    histogram._sum.inc(total)
    for i, n in counts.items():
        histogram._buckets[i].inc(n)
