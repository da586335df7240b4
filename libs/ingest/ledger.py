"""The ledger: every acknowledged rawId ends in commands, a failure, a duplicate, or a counted skip.

``check`` puts each payload stored in the raw log during a window in exactly one bucket, so the counts add
up to the number acknowledged or the report says which payloads do not (``lost``: older than the grace
period with no outcome and no failure; ``in_flight``: younger). ``scan_topics`` reads the public topics
(read_committed) and counts any ``commandId`` that appears twice. ``report`` is both, for the CLI
(``pos-ingest ledger [--scan-topics]``) and the support API.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from ingest import topics
from ingest.db.pool import create_pool
from ingest.settings import CommonSettings

#: the buckets, in precedence order: a payload with commands and a failed command counts as with_commands
#: (its failure is also counted in ``partial``); the buckets are disjoint, so they sum to ``acknowledged``
BUCKETS = ("with_commands", "failed", "duplicates", "skipped", "lost", "in_flight")

LEDGER_SQL = """
WITH acked AS (
    SELECT raw_id, received_at, provider FROM raw_payloads
    WHERE received_at >= $1 AND received_at < $2 AND ($3::text IS NULL OR tenant_id = $3)
),
o AS (SELECT raw_id,
             bool_or(outcome = 'processed' AND cardinality(command_ids) > 0) AS cmds,
             bool_or(outcome = 'processed' AND cardinality(command_ids) = 0
                     AND cardinality(duplicate_command_ids) > 0) AS dup_cmds,
             bool_or(outcome <> 'processed' OR cardinality(command_ids) = 0) AS other,
             (array_agg(CASE WHEN outcome = 'processed' THEN 'no_commands' ELSE coalesce(nullif(reason, ''), outcome)
                        END ORDER BY recorded_at))[1] AS skip_reason,
             max(recorded_at) AS at
      FROM outcomes WHERE raw_id IN (SELECT raw_id FROM acked) GROUP BY raw_id),
imp AS (SELECT raw_id FROM feed_imports  -- a bulk import is accounted for when its worker is through the file
        WHERE raw_id IN (SELECT raw_id FROM acked) AND state IN ('queued', 'running')),
f AS (SELECT raw_id, bool_or(class = 'duplicate') AS dup, bool_or(class <> 'duplicate') AS failed,
             (array_agg(class || ':' || reason_code ORDER BY recorded_at)
                 FILTER (WHERE class <> 'duplicate'))[1] AS failure, max(recorded_at) AS at
      FROM failures WHERE raw_id IN (SELECT raw_id FROM acked) GROUP BY raw_id)
SELECT a.raw_id::text AS raw_id, a.provider, a.received_at,
       CASE WHEN imp.raw_id IS NOT NULL THEN 'in_flight'
            WHEN coalesce(o.cmds, false) THEN 'with_commands'
            WHEN coalesce(f.failed, false) THEN 'failed'
            WHEN coalesce(f.dup, false) OR coalesce(o.dup_cmds, false) THEN 'duplicates'
            WHEN coalesce(o.other, false) THEN 'skipped'
            WHEN a.received_at < now() - $4::interval THEN 'lost'
            ELSE 'in_flight' END AS bucket,
       coalesce(o.cmds, false) AND coalesce(f.failed, false) AS partial,
       o.skip_reason, f.failure, greatest(o.at, f.at) AS accounted_at
FROM acked a LEFT JOIN o USING (raw_id) LEFT JOIN f USING (raw_id) LEFT JOIN imp USING (raw_id)
"""


def summarize(rows: list[dict[str, Any]], *, sample: int = 20) -> dict[str, Any]:
    """Counts per bucket from per-payload rows (pure: the tests and the support API reuse it)."""
    buckets = Counter(r["bucket"] for r in rows)
    report: dict[str, Any] = {"acknowledged": len(rows), **{b: buckets.get(b, 0) for b in BUCKETS}}
    report["partial"] = sum(1 for r in rows if r["partial"])
    report["skip_reasons"] = dict(Counter(r["skip_reason"] for r in rows if r["bucket"] == "skipped"))
    report["failure_reasons"] = dict(Counter(r["failure"] for r in rows if r["bucket"] == "failed"))
    report["by_provider"] = {p: dict(Counter(r["bucket"] for r in rows if r["provider"] == p))
                             for p in sorted({r["provider"] for r in rows})}
    report["lost_sample"] = [r["raw_id"] for r in rows if r["bucket"] == "lost"][:sample]
    report["in_flight_sample"] = [r["raw_id"] for r in rows if r["bucket"] == "in_flight"][:sample]
    total = sum(report[b] for b in BUCKETS)
    # exact: the buckets must add up, and nothing may be lost or still on its way
    report["balanced"] = total == report["acknowledged"] and report["lost"] == 0 and report["in_flight"] == 0
    return report


async def payload_rows(settings: CommonSettings, *, since: datetime | None = None, until: datetime | None = None,
                       tenant: str | None = None, grace: timedelta = timedelta(seconds=60)) -> list[dict[str, Any]]:
    """One row per stored payload of the window: raw_id, provider, bucket, partial, reasons, accounted_at."""
    since = since or datetime(1970, 1, 1, tzinfo=timezone.utc)
    until = until or datetime.now(timezone.utc) + timedelta(days=1)
    pool = await create_pool(settings.dsn, min_size=1, max_size=1)
    try:
        return [dict(r) for r in await pool.fetch(LEDGER_SQL, since, until, tenant, grace)]
    finally:
        await pool.close()


async def check(settings: CommonSettings, *, since: datetime | None = None, until: datetime | None = None,
                tenant: str | None = None, grace: timedelta = timedelta(seconds=60)) -> dict[str, Any]:
    report = summarize(await payload_rows(settings, since=since, until=until, tenant=tenant, grace=grace))
    report["window"] = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
                        "tenant": tenant, "graceSeconds": grace.total_seconds()}
    return report


def read_topics(settings: CommonSettings, names: tuple[str, ...], *, since: datetime | None = None,
                timeout_s: float = 60.0) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """(logical topic, headers, value) of every record of ``names`` (read_committed) from ``since`` (by broker
    timestamp; the beginning if None) up to the end at the time of the call. Blocking: run it in a thread.

    "The end" is the read_uncommitted high watermark taken at the start, and the read is over only when the
    read_committed position has reached it: every transaction that had written before it is then decided
    (committed or aborted), so what was read is final. A read_committed reader cannot pass an undecided
    transaction (the stable offset), and on Tansu an aborted transaction becomes *visible* once decided
    (tests/chaos/test_broker_semantics.py): stopping earlier, on a quiet moment, answered "not there" for
    records that appeared later. Tansu's high watermark is the start of its last batch + 1 (and 0 for a
    read_committed ListOffsets while a transaction is open), hence the read_uncommitted query; reaching it
    means that last batch was read whole.

    Raises ``TimeoutError`` if a topic cannot be read to its end within ``timeout_s`` (e.g. a transaction
    before the end is still undecided).
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    common = {"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.auto.commit": False,
              "group.id": f"pos-ingest-ledger-{time.monotonic_ns()}", "enable.partition.eof": False}
    consumer = Consumer({**common, "isolation.level": "read_committed"})
    ends = Consumer({**common, "isolation.level": "read_uncommitted"})  # only asked for the watermarks
    start_ms = int(since.timestamp() * 1000) if since else None
    try:
        for name in names:
            topic = settings.topic(name)
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            parts = list(meta.partitions)
            tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
            if start_ms is not None:
                try:
                    found = consumer.offsets_for_times([TopicPartition(topic, p, start_ms) for p in parts], timeout=10)
                    tps = [tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, OFFSET_BEGINNING)
                           for tp in found]
                except KafkaException:
                    pass  # no time index: from the beginning
            start = {tp.partition: tp.offset for tp in tps}
            high = {p: ends.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in parts}
            # nothing to wait for where the end is not past where the read starts
            pending = {p for p in parts if high[p] > 0 and not 0 <= high[p] <= start[p]}
            consumer.assign(tps)
            deadline = time.monotonic() + timeout_s
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic} not read to its end within {timeout_s}s (partitions "
                                       f"{sorted(pending)}: an undecided transaction?)")
                for m in consumer.consume(500, 0.2):
                    if m.error():
                        continue
                    headers = {k: (v or b"").decode(errors="replace") for k, v in (m.headers() or [])}
                    yield name, headers, m.value() or b""
                # position, not the last offset seen: transaction markers occupy offsets too
                pending = {tp.partition for tp in consumer.position([TopicPartition(topic, p) for p in pending])
                           if tp.offset < high[tp.partition]}
    finally:
        consumer.close()
        ends.close()


def scan_topics(settings: CommonSettings, *, since: datetime | None = None, until: datetime | None = None,
                tenant: str | None = None, names: tuple[str, ...] | None = None,
                timeout_s: float = 60.0) -> dict[str, Any]:
    """Read the public topics (read_committed) for the window; any ``commandId`` seen twice on one topic is a
    duplicate. Blocking (a Kafka consumer): call it from a thread in async code."""
    from ingest.avro import DecodeError, codec

    names = names or (topics.COMMANDS, *topics.PUBLIC_EVENT_TOPICS)
    seen: dict[str, Counter[str]] = {n: Counter() for n in names}
    raw_of: dict[str, set[str]] = {}
    out: dict[str, Any] = {"topics": {}, "duplicate_command_ids": 0, "duplicate_sample": [], "complete": True}
    try:
        for name, headers, value in read_topics(settings, names, since=since, timeout_s=timeout_s):
            try:
                _, record = codec().decode(value)
            except DecodeError:
                record = {"commandId": headers.get("command-id"), "tenantId": headers.get("tenant-id"),
                          "rawId": headers.get("raw-id")}
            if tenant and record.get("tenantId") != tenant:
                continue
            received = record.get("receivedAt")
            if isinstance(received, datetime) and ((since and received < since) or (until and received >= until)):
                continue
            command_id = record.get("commandId")
            if command_id:
                seen[name][command_id] += 1
                raw_of.setdefault(command_id, set()).add(str(record.get("rawId")))
    except TimeoutError as exc:
        out["complete"] = False
        out["error"] = str(exc)
    for name in names:
        dups = {c: n for c, n in seen[name].items() if n > 1}
        out["topics"][name] = {"records": sum(seen[name].values()), "distinct": len(seen[name]),
                               "duplicates": len(dups)}
        out["duplicate_command_ids"] += len(dups)
        out["duplicate_sample"] += [{"topic": name, "commandId": c, "count": n, "rawIds": sorted(raw_of[c])}
                                    for c, n in list(dups.items())[:10]]
    return out


def visible_command_ids(settings: CommonSettings, command_ids: set[str], *, since: datetime,
                        names: tuple[str, ...] | None = None, timeout_s: float = 30.0) -> dict[str, set[str]]:
    """Logical topic → which of ``command_ids`` a read_committed reader sees there (by the ``command-id``
    header), reading from ``since``. Used by the command writer when it re-runs an input."""
    names = names or (topics.COMMANDS, *topics.PUBLIC_EVENT_TOPICS)
    out: dict[str, set[str]] = {n: set() for n in names}
    for name, headers, _ in read_topics(settings, names, since=since, timeout_s=timeout_s):
        cid = headers.get("command-id")
        if cid in command_ids:
            out[name].add(cid)
    return out


async def report(settings: CommonSettings, *, since: datetime | None = None, until: datetime | None = None,
                 tenant: str | None = None, grace: timedelta = timedelta(seconds=60),
                 scan: bool = False) -> dict[str, Any]:
    """The ledger check, plus the public-topic duplicate scan when ``scan`` (what the CLI and support API show)."""
    import asyncio

    out = await check(settings, since=since, until=until, tenant=tenant, grace=grace)
    if scan:
        topics_report = await asyncio.get_running_loop().run_in_executor(
            None, lambda: scan_topics(settings, since=since, until=until, tenant=tenant))
        out["topics"] = topics_report
        out["duplicate_command_ids"] = topics_report["duplicate_command_ids"]
        out["balanced"] = out["balanced"] and topics_report["duplicate_command_ids"] == 0
    return out
