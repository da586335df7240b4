"""``run_stage``: the one runtime every stage shares.

Consume a batch → decode (Avro single-object) → call the stage's pure batch handler → produce its outputs,
failure records and outcomes *and* commit the input offsets in one Kafka transaction
(``send_offsets_to_transaction``; every reader uses read_committed). A crash at any point therefore
neither duplicates nor loses output: the aborted transaction is invisible and the inputs are read again.

This is the only place that catches broadly. Errors are routed by class:
- ``Retriable`` (a dependency is down): block, back off, retry the same batch — nothing is dead-lettered
  because PostgreSQL was restarting;
- ``Fatal`` and anything unexpected: the batch is re-run one input at a time to isolate the culprit, which
  becomes a failure record (unexpected exceptions as class ``processing``) — the stage moves on;
- ``Skippable``: counted, acknowledged, and recorded as an outcome so the ledger still balances.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ingest import topics
from ingest.avro import DecodeError, codec
from ingest.errors import Fatal, IngestError, PoisonMessage, Retriable, Skippable
from ingest.kafka.results import Failure, Input, Output, Result, failure_record, outcome_record
from ingest.observability import metrics
from ingest.runtime import settle_heap
from ingest.settings import StageSettings

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Input]], Awaitable[list[Result]]]


@dataclass
class StageSpec:
    """What distinguishes one stage: its name, its input, the schema it expects, its handler."""

    name: str
    input_topic: str
    expect: str | None
    handler: BatchHandler
    on_start: Callable[[], Awaitable[None]] | None = None
    on_stop: Callable[[], Awaitable[None]] | None = None
    ready: Callable[[], Awaitable[bool]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _headers(msg: Message) -> dict[str, str]:
    out = {}
    for k, v in msg.headers() or []:
        if v is not None:
            try:
                out[k] = v.decode()
            except UnicodeDecodeError:
                continue
    return out


def poison_context(msg: Message) -> dict[str, Any]:
    """Who an undecodable record belonged to, from its headers: its failure then closes that rawId in the ledger.

    A header that is not a UUID is dropped (the failures table types raw_id as uuid).
    """
    headers = _headers(msg)
    raw_id = headers.get("raw-id") or None
    try:
        raw_id = str(uuid.UUID(raw_id)) if raw_id else None
    except ValueError:
        raw_id = None
    return {"rawId": raw_id, "tenantId": headers.get("tenant-id") or None,
            "provider": headers.get("provider") or None}


def classify(exc: BaseException) -> IngestError:
    """Anything that is not one of ours becomes a ``processing`` failure with a summary."""
    if isinstance(exc, IngestError):
        return exc
    err = Fatal(f"unexpected {type(exc).__name__}: {str(exc)[:500]}", reason_code="unexpected_exception")
    err.__cause__ = exc
    return err


#: messages taken from the fetched queue at a time while a batch grows (its byte budget is checked between)
BATCH_SLICE = 50


def consumer_config(settings: StageSettings, name: str, instance: str) -> dict[str, Any]:
    """The group consumer every pipeline reader uses: read_committed, offsets committed by the reader."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": f"{settings.topic_prefix}pos-ingest-{name}",
        "client.id": f"pos-ingest-{name}-{instance}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 3),
        # a dependency outage may block a reader for long; the group must not evict it meanwhile
        "max.poll.interval.ms": 1800000, "enable.partition.eof": False,
        # the broker answers a long poll as soon as data arrives; a short wait only makes idle readers spin
        # (20 ms: ~2.5% of a core of broker CPU per idle reader on Tansu; docs/performance.md)
        "fetch.wait.max.ms": settings.fetch_wait_max_ms,
        "queued.max.messages.kbytes": settings.fetch_queue_max_kb,
    }


class TransactionalProducer:
    """A transactional producer that is replaced when it can no longer be trusted to finish a transaction.

    librdkafka 2.16 against Tansu: after the broker refused connections for 6 s, the *next*
    ``send_offsets_to_transaction`` of such a producer never returns (its timeout is ignored, cf. librdkafka
    #5456/#5511), even when the producer was idle during the outage (reproduced in isolation). That cost a
    stall-watchdog restart (30–180 s) per stage, one after the other as the backlog reached each. A fresh
    producer with the same ``transactional.id`` commits at once (measured: ready in 0.5 s) and fences whatever
    the old one left open. Used by every transactional writer: the stage runtime and the feeds worker.
    """

    def __init__(self, settings: Any, transactional_id: str, *, name: str, linger_ms: int = 2) -> None:
        self.settings, self.transactional_id, self.name, self.linger_ms = settings, transactional_id, name, linger_ms
        self._lost = False
        self._ready = False
        self.producer = self._new()

    def _new(self) -> Producer:
        return Producer({
            "bootstrap.servers": self.settings.kafka_bootstrap_servers, "transactional.id": self.transactional_id,
            "transaction.timeout.ms": self.settings.transaction_timeout_ms, "enable.idempotence": True,
            "linger.ms": self.linger_ms, "compression.type": "lz4", "error_cb": self._on_error,
        })

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._lost = True

    def ready(self) -> None:
        """Before a transaction (blocking): initialised, and replaced first if it lived through the loss of every
        broker connection or failed to abort."""
        self.producer.poll(0)  # serves error_cb
        if self._lost and self._ready:
            log.warning("%s: replacing the transactional producer (broker connections lost or abort failed)",
                        self.name)
            self.producer = self._new()
            self._ready = False
        self._lost = False
        if not self._ready:
            self.producer.init_transactions(30)
            self._ready = True

    def abort(self) -> None:
        """Abort the open transaction; a producer that cannot abort cannot begin either: it is replaced next."""
        try:
            self.producer.abort_transaction(30)
        except KafkaException as exc:
            log.warning("%s: abort failed (%s); replacing the transactional producer", self.name, exc)
            self._lost = True


class StageRunner:
    def __init__(self, spec: StageSpec, settings: StageSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.stage = spec.name
        self.input_topics = [settings.topic(t) for t in spec.extra.get("topics", [spec.input_topic])]
        instance = settings.stage_instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self._consumer = Consumer(consumer_config(settings, spec.name, instance))
        self._txn = TransactionalProducer(settings, f"{settings.topic_prefix}pos-ingest-{spec.name}-{instance}",
                                          name=f"stage {spec.name}")
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{spec.name}-kafka")
        self._stopping = asyncio.Event()
        self._last_lag = 0.0
        self.processed = 0
        self.healthy = True

    @property
    def _producer(self) -> Producer:
        return self._txn.producer

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def _txn_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A transactional producer call under a watchdog.

        librdkafka can wedge inside a transaction op when the coordinator's connection dies mid-request
        (seen: ``send_offsets_to_transaction(..., 30)`` blocked for 10+ minutes after the broker refused
        connections for 6 s). Nothing in-process can free that thread, so the stage exits and the supervisor
        (or Kubernetes) restarts it: the open transaction is fenced by the next instance's
        ``init_transactions`` and the inputs are read again from the committed offsets — nothing lost.
        """
        try:
            return await asyncio.wait_for(self._call(fn, *args), self.settings.kafka_stall_timeout_s)
        except asyncio.TimeoutError:
            log.critical("stage %s: Kafka transaction call %s stalled for %.0fs; exiting to be restarted",
                         self.stage, getattr(fn, "__name__", fn), self.settings.kafka_stall_timeout_s)
            logging.shutdown()
            os._exit(75)  # EX_TEMPFAIL: the stuck native thread would block a normal shutdown

    def stop(self) -> None:
        self._stopping.set()

    # --- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        await self._txn_call(self._txn.ready)
        self._consumer.subscribe(self.input_topics)
        log.info("stage %s consuming %s", self.stage, ", ".join(self.input_topics))
        try:
            while not self._stopping.is_set():
                msgs = await self._call(self._next_batch)
                msgs = [m for m in msgs if not self._transport_error(m)]
                if msgs:
                    await self._process(msgs)
                if time.monotonic() - self._last_lag > 5:
                    await self._call(self._update_lag)
        finally:
            await self._call(self._consumer.close)
            await self._call(self._producer.flush, 5)
            self._io.shutdown(wait=False)

    def _next_batch(self) -> list[Message]:
        """The first message as soon as it arrives (up to ``poll_timeout_s``), then whatever is fetched already.

        ``consume(batch_size, timeout)`` waits the whole timeout unless a full batch is there, which put 50 ms on
        every hop at light load; this way a batch is what arrived while the previous one was being processed, so
        batches still grow with load (docs/performance.md).

        A batch also stops growing once its values reach ``batch_max_bytes``: what is not taken stays fetched for
        the next batch (a bulk feed's chunks would otherwise be decoded 250,000 commands at a time).
        """
        first = self._consumer.poll(self.settings.poll_timeout_s)
        if first is None:
            return []
        batch = [first]
        size, limit, room = len(first.value() or b""), self.settings.batch_max_bytes, self.settings.batch_size - 1
        while room > 0 and size < limit:
            # as many as should still fit at the batch's mean size so far (at least one, at most a slice)
            fits = (limit - size) * len(batch) // max(size, 1) + 1
            more = self._consumer.consume(min(room, BATCH_SLICE, fits), 0)
            if not more:
                break
            batch += more
            room -= len(more)
            size += sum(len(m.value() or b"") for m in more)
        return batch

    def _transport_error(self, msg: Message) -> bool:
        return transport_error(msg, self.stage)

    def _decode(self, msgs: list[Message]) -> tuple[list[Input], list[tuple[Message, Result]]]:
        inputs, poison = [], []
        for m in msgs:
            headers = _headers(m)
            try:
                schema, record = codec().decode(m.value() or b"", self.spec.expect)
            except DecodeError as exc:
                err = PoisonMessage(f"undecodable record on {m.topic()}: {exc}")
                err.__cause__ = exc
                poison.append((m, Result(failures=[Failure(err)], label="failed")))
                continue
            inputs.append(Input(m.topic(), m.partition(), m.offset(), (m.key() or b"").decode(errors="replace"),
                                headers, schema, record, m.value() or b""))
        return inputs, poison

    async def _handle(self, inputs: list[Input]) -> list[Result]:
        """The handler on the whole batch; on a non-retriable error, one input at a time."""
        backoff = 0.2
        while True:
            try:
                try:
                    results = await self.spec.handler(inputs)
                    if len(results) != len(inputs):
                        raise RuntimeError(f"handler returned {len(results)} results for {len(inputs)} inputs")
                    return results
                except Retriable:
                    raise
                except Exception:  # noqa: BLE001 — isolate the culprit, the rest goes through
                    if len(inputs) == 1:
                        raise
                    return [await self._handle_one(inp) for inp in inputs]
            except Retriable as exc:
                metrics.STAGE_RETRYING.labels(self.stage).set(1)
                log.warning("stage %s blocked on a dependency, retrying in %.1fs: %s", self.stage, backoff,
                            exc.message)
                try:
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                    raise asyncio.CancelledError("stopping while blocked")
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, self.settings.retry_backoff_max_s)

    async def _handle_one(self, inp: Input) -> Result:
        try:
            results = await self.spec.handler([inp])
            return results[0]
        except Retriable:
            raise
        except Skippable as exc:
            return Result(skipped=exc.reason_code, label="skipped")
        except Exception as exc:  # noqa: BLE001 — the one place that catches broadly
            err = classify(exc)
            if not isinstance(exc, IngestError):
                log.exception("stage %s: unexpected error on raw %s", self.stage, inp.raw_id)
            return Result.fail(err)

    async def _process(self, msgs: list[Message]) -> None:
        started = time.perf_counter()
        inputs, poison = self._decode(msgs)
        results = await self._handle(inputs) if inputs else []
        metrics.STAGE_RETRYING.labels(self.stage).set(0)
        pairs: list[tuple[Input | None, Message | None, Result]] = [(i, None, r) for i, r in zip(inputs, results)]
        pairs += [(None, m, r) for m, r in poison]
        await self._commit(pairs, msgs)
        elapsed = time.perf_counter() - started
        metrics.STAGE_BATCH.labels(self.stage).observe(elapsed)
        now = datetime.now(timezone.utc)
        counts: Counter[tuple[str, str]] = Counter()
        latency = metrics.STAGE_LATENCY.labels(self.stage)
        for inp, _, res in pairs:
            counts[(inp.provider if inp else "unknown", res.label)] += 1
            received = inp.record.get("receivedAt") if inp else None
            if isinstance(received, datetime):
                latency.observe(max(0.0, (now - received).total_seconds()))
        for (provider, label), n in counts.items():
            metrics.STAGE_MESSAGES.labels(self.stage, provider, label).inc(n)
        self.processed += len(msgs)

    def _records(self, pairs: Sequence[tuple[Input | None, Message | None, Result]]) -> list[Output]:
        out: list[Output] = []
        for inp, msg, res in pairs:
            out.extend(res.outputs)
            origin = (inp.topic, inp.partition, inp.offset) if inp else (msg.topic(), msg.partition(), msg.offset())  # type: ignore[union-attr]
            for index, failure in enumerate(res.failures):
                rec = failure_record(inp, failure, stage=self.stage, index=index, origin=origin,
                                     raw=poison_context(msg) if inp is None and msg is not None else None)
                metrics.FAILURES.labels(self.stage, rec["class"], rec["provider"] or "unknown").inc()
                out.append(Output(topics.FAILURES, f"{rec['tenantId'] or '-'}:-:{rec['rawId'] or '-'}",
                                  codec().encode("FailureRecord", rec),
                                  {"raw-id": rec["rawId"] or "", "tenant-id": rec["tenantId"] or "",
                                   "provider": rec["provider"] or "", "type": "FailureRecord",
                                   "stage": self.stage, "origin-topic": origin[0],
                                   "origin-partition": str(origin[1]), "origin-offset": str(origin[2]),
                                   "exception": rec["exception"] or ""}))
            outcome = res.outcome
            if outcome is None and res.skipped is not None and inp is not None:
                outcome = outcome_record(inp, stage=self.stage, outcome="skipped", reason=res.skipped)
            if outcome is not None:
                out.append(Output(topics.OUTCOMES, f"{outcome['tenantId'] or '-'}:-:{outcome['rawId']}",
                                  codec().encode("PayloadOutcome", outcome),
                                  {"raw-id": outcome["rawId"] or "", "tenant-id": outcome["tenantId"] or "",
                                   "provider": outcome["provider"], "type": "PayloadOutcome"}))
        return out

    async def _commit(self, pairs: Sequence[tuple[Input | None, Message | None, Result]],
                      msgs: list[Message]) -> None:
        outputs = self._records(pairs)
        tps = next_offsets(msgs)
        try:
            await self._txn_call(self._transact, outputs, tps)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise
            # whatever state the transaction is in, it ends aborted and the batch is consumed again (its outputs
            # are re-derived then); retrying it here began a new transaction over an undecided one
            log.warning("stage %s transaction failed (%s); aborting, the batch will be read again", self.stage, err)
            await self._txn_call(self._abort_and_rewind, msgs)

    def _transact(self, outputs: list[Output], tps: list[TopicPartition]) -> None:
        self._txn.ready()  # a producer that lived through a broker outage is replaced first (see the class)
        p = self._producer
        p.begin_transaction()
        try:
            produce_outputs(p, outputs, self.settings.topic)
            p.send_offsets_to_transaction(tps, self._consumer.consumer_group_metadata(), 30)
            p.commit_transaction(60)
        except KafkaException as exc:
            if exc.args[0].retriable() and not exc.args[0].txn_requires_abort():
                # commit may be retried as is
                p.commit_transaction(60)
                return
            raise

    def _abort_and_rewind(self, msgs: list[Message]) -> None:
        """Abort, then seek back to this batch's first offsets: every earlier batch is committed (its
        ``commit_transaction`` returned), whereas the group's committed offset may lag behind it (Tansu applies
        a transaction's offsets only once the transactions overlapping it are decided too)."""
        self._txn.abort()
        for tp in first_offsets(msgs):
            try:
                self._consumer.seek(tp)
            except KafkaException as exc:  # revoked meanwhile: its new owner reads from the committed offset
                log.warning("stage %s: cannot rewind %s [%d]: %s", self.stage, tp.topic, tp.partition, exc)

    def _update_lag(self) -> None:
        self._last_lag = time.monotonic()
        record_lag(self._consumer, self.stage)


def transport_error(msg: Message, stage: str) -> bool:
    """True for an error event in place of a message (logged); a fatal client error is raised."""
    err = msg.error()
    if err is None:
        return False
    if err.fatal():
        raise KafkaException(err)
    log.warning("consumer error on %s: %s", stage, err)
    return True


def record_lag(consumer: Consumer, stage: str) -> None:
    """``pos_ingest_consumer_lag`` of every partition the consumer owns (best effort: metrics only)."""
    try:
        for tp in consumer.assignment():
            low, high = consumer.get_watermark_offsets(tp, timeout=1, cached=False)
            pos = consumer.position([tp])[0].offset
            lag = max(0, high - (pos if pos >= 0 else low))
            metrics.CONSUMER_LAG.labels(stage, tp.topic, str(tp.partition)).set(lag)
    except KafkaException:
        pass


def first_offsets(msgs: Sequence[Message]) -> list[TopicPartition]:
    """Where to read ``msgs`` again: the first offset of each partition."""
    return _per_partition(msgs, min, 0)


def next_offsets(msgs: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit once ``msgs`` are done: one past the last message of each partition."""
    return _per_partition(msgs, max, 1)


def _per_partition(msgs: Sequence[Message], pick: Callable[[int, int], int], plus: int) -> list[TopicPartition]:
    offsets: dict[tuple[str, int], int] = {}
    for m in msgs:
        key = (m.topic(), m.partition())
        offsets[key] = pick(offsets.get(key, m.offset()), m.offset())
    return [TopicPartition(t, p, o + plus) for (t, p), o in offsets.items()]


async def serve_stage(spec: StageSpec, settings: StageSettings) -> None:
    """Run one stage until SIGTERM/SIGINT: drain the batch in hand, commit, leave the group, exit."""
    from ingest.observability.health import start_health_server

    if spec.on_start:
        await spec.on_start()
    runner = StageRunner(spec, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    health = await start_health_server(settings.metrics_port, ready=spec.ready) if settings.metrics_port else None
    settle_heap()
    try:
        await runner.run()
    finally:
        if health:
            await health.cleanup()
        if spec.on_stop:
            await spec.on_stop()


def produce_outputs(producer: Producer, outputs: list[Output], topic: Callable[[str], str]) -> None:
    """Produce each output (inside the caller's transaction), waiting out a full local queue.

    Keys and header values go to librdkafka as ``str`` (it writes their UTF-8 bytes, the dict's order kept): no
    per-message encode or header list in Python."""
    names: dict[str, str] = {}
    produce = producer.produce
    for o in outputs:
        name = names.get(o.topic)
        if name is None:
            name = names[o.topic] = topic(o.topic)
        while True:
            try:
                produce(name, o.value, o.key, headers=o.headers)
                break
            except BufferError:
                producer.poll(0.05)


def stage_with_resources(name: str, input_topic: str, expect: str | None, handler: BatchHandler, *,
                         pool: Any = None, store: Any = None,
                         on_start: Callable[[], Awaitable[None]] | None = None) -> StageSpec:
    """A StageSpec whose readiness is PostgreSQL answering and whose stop closes the pool and the S3 client."""
    from ingest.db.pool import PG_OUTAGE

    async def ready() -> bool:
        if pool is None:
            return True
        try:
            await pool.fetchval("SELECT 1")
            return True
        except PG_OUTAGE:
            return False

    async def on_stop() -> None:
        if pool is not None:
            await pool.close()
        if store is not None:
            store.close()

    return StageSpec(name, input_topic, expect, handler, on_start=on_start, on_stop=on_stop, ready=ready)
