"""The feed worker: one leased import at a time, streamed from S3, parsed and emitted batch by batch.

Per batch of ``feed_batch_rows`` records: one mapping query (plus one auto-creation), ``translate_batch``,
then one Kafka transaction holding the batch's ``Validated`` chunks (the validator's rules applied per row) and
row failures, then a PG checkpoint
(rows done, counts, items seen). A crash between the transaction and the checkpoint re-emits that one batch
on resume: its command ids are fixed per (rawId, row) so the command writer refuses them, and the feeds
stage's own failure ids are fixed per (rawId, row, column), so nothing is stored twice.
After the last row a complete primary import deactivates the items of the feed's previous snapshot it no
longer carries, and becomes the snapshot.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
from confluent_kafka import KafkaException

from ingest import feeds
from ingest.adapters.registry import UnknownProvider, product_feed
from ingest.canonical.mapping import MappingContext, MappingKey, TenantSettings, auto_canonical_id
from ingest.db.pool import PG_OUTAGE, outage
from ingest.errors import DependencyUnavailable, Fatal, InvalidField, Retriable, UnparseablePayload
from ingest.kafka.results import Output
from ingest.kafka.stage import TransactionalProducer, classify, produce_outputs
from ingest.pipeline import tenant_to_map
from ingest.rawlog.s3 import S3Store
from services.feeds.settings import FeedsSettings
from services.mapper.app import PostgresMappingRepository
from services.validator.rules import Violation, validate

log = logging.getLogger(__name__)
#: a file that stops part way cannot be a full snapshot: no deactivation after one of these
INCOMPLETE_FILE = frozenset({"malformed_xml", "truncated"})


class CountingChunks:
    """Blocking reads of an S3 body in fixed chunks, counting the bytes handed to the parser."""

    def __init__(self, body: Any, size: int) -> None:
        self.body, self.size, self.read = body, size, 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk: bytes = self.body.read(self.size)
            if not chunk:
                return
            self.read += len(chunk)
            yield chunk


class FeedWorker:
    def __init__(self, settings: FeedsSettings, pool: asyncpg.Pool, store: S3Store,
                 repo: PostgresMappingRepository) -> None:
        self.settings, self.pool, self.store, self.repo = settings, pool, store, repo
        self.owner = f"feeds-{settings.stage_instance_id or 'local'}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._parse = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-parse")
        self._kafka = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-kafka")
        self._txn = TransactionalProducer(settings, f"{settings.topic_prefix}pos-ingest-feeds-worker-{self.owner}",
                                          name="feed worker", linger_ms=5)
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self._io(self._txn.ready)
        self._task = asyncio.create_task(self._loop(), name="feed-worker")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._parse.shutdown(wait=False, cancel_futures=True)
        self._kafka.shutdown(wait=False, cancel_futures=True)

    async def _io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._kafka, fn, *args)

    # --- the loop -----------------------------------------------------------------------------
    async def _loop(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                job = await feeds.claim(self.pool, self.owner, self.settings.feed_lease_s)
            except PG_OUTAGE as exc:
                log.warning("feed worker cannot reach PostgreSQL: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_backoff_max_s)
                continue
            if job is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.feed_poll_s)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                await self.run(job)
                backoff = 0.5
            except Retriable as exc:
                # the import stays leased to us and resumes from its checkpoint on the next claim
                log.warning("import %s paused on a dependency, retrying in %.1fs: %s", job.raw_id, backoff,
                            exc.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_backoff_max_s)
            except Exception as exc:  # noqa: BLE001 — like run_stage: one bad file must not stop every import
                await self._fail(job, exc)

    async def _fail(self, job: feeds.FeedJob, exc: BaseException) -> None:
        err = classify(exc)
        if not isinstance(exc, Fatal):
            log.exception("import %s failed unexpectedly", job.raw_id)
        try:
            await self._transact([feeds.failure_output(job, err, {"file": job.file}, "import")])
            await feeds.fail(self.pool, job.raw_id, self.owner, f"{err.reason_code}: {err.message}")
        except (DependencyUnavailable, KafkaException, *PG_OUTAGE) as again:
            log.warning("could not record the failure of import %s yet: %s", job.raw_id, again)
            await asyncio.sleep(1)

    # --- one import -----------------------------------------------------------------------------
    async def run(self, job: feeds.FeedJob) -> None:
        try:
            options = await feeds.source_options(self.pool, job.tenant_id, job.provider)
        except PG_OUTAGE as exc:
            raise outage(exc) from exc
        try:
            feed = product_feed(job.provider)
        except UnknownProvider as exc:
            raise UnparseablePayload(str(exc), reason_code="no_feed_format") from exc
        tenant = (await self.repo.tenants({job.tenant_id})).get(job.tenant_id) or TenantSettings(job.tenant_id)
        loop = asyncio.get_running_loop()
        chunks = CountingChunks(await self.store.open_body(job.object_key), self.settings.feed_read_bytes)
        items = feed.records(chunks, file=job.file, filename=job.file, content_type=job.content_type)
        rows_done = job.rows_done
        if rows_done:
            # resume: the file rows before the checkpoint were emitted already; parse past them only
            await loop.run_in_executor(self._parse, _skip, items, rows_done)
            log.info("import %s resumes after record ending at file row %d", job.raw_id, rows_done)
        incomplete = False
        usable = False
        pending = loop.run_in_executor(self._parse, _take, items, self.settings.feed_batch_rows)
        while True:
            batch: list[Any] = await pending
            if not batch:
                break
            # the next batch is read and parsed while this one is translated, written and checkpointed
            pending = loop.run_in_executor(self._parse, _take, items, self.settings.feed_batch_rows)
            ctx = await self._context(job, tenant, feeds.batch_keys(feed, batch, options))
            result = feeds.translate_batch(job, feed, batch, ctx, options, check_for(tenant))
            incomplete = incomplete or any(e.reason_code in INCOMPLETE_FILE for e in result.errors)
            usable = usable or bool(result.records)
            outputs = self._chunks(job, result.records, tenant)
            outputs += [feeds.row_error_output(job, e) for e in result.errors]
            outputs += [feeds.unmapped_output(job, row, missing) for row, missing in result.unmapped]
            await self._transact(outputs)
            rows_done += sum(record.span for record in batch)
            items_seen = [(x, i, n) for x, (i, n) in result.items.items()] if job.mode == "primary" else []
            await self._pg(feeds.checkpoint(self.pool, job.raw_id, self.owner, self.settings.feed_lease_s,
                                            rows_done=rows_done, bytes_read=chunks.read,
                                            commands=len(result.records),
                                            failures=len(result.errors) + len(result.unmapped), items=items_seen))
        await self._complete(job, tenant, options, rows_done, chunks.read, incomplete, usable)

    async def _complete(self, job: feeds.FeedJob, tenant: TenantSettings, options: dict[str, Any], rows: int,
                        bytes_read: int, incomplete: bool, usable: bool) -> None:
        outputs: list[Output] = []
        failures = deactivated = 0
        snapshot = job.mode == "primary" and usable and not incomplete
        note = None
        if rows == 0 or not usable:
            outputs.append(feeds.failure_output(job, feeds.InvalidRow(f"{job.file}: no usable product rows",
                                                                      reason_code="empty_feed"),
                                                {"file": job.file}, "empty"))
            failures += 1
        if snapshot:
            total, missing = await self._pg(feeds.previous_snapshot_missing(self.pool, job))
            ratio = float(options.get("maxDeleteRatio", feeds.MAX_DELETE_RATIO))
            if missing and len(missing) > ratio * total:
                snapshot = False
                note = f"deactivation refused: {len(missing)} of {total} items missing (limit {ratio:.0%})"
                outputs.append(feeds.failure_output(job, feeds.InvalidRow(f"{job.file}: {note}",
                                                                          reason_code="deactivation_refused"),
                                                    {"file": job.file, "missing": str(len(missing)),
                                                     "previous": str(total)}, "deactivation"))
                failures += 1
            elif missing:
                ids = [(x, i) for x, i, _ in missing]
                ctx = MappingContext(job.tenant_id, job.provider, {MappingKey("item", x): i for x, i in ids}
                                     | await self._optional_ids(job, tenant, options), tenant)
                commands = feeds.deactivations(job, missing, ctx, options)
                passed, refused = feeds.checked(commands, check_for(tenant))
                outputs += self._chunks(job, passed, tenant)
                outputs += [feeds.failure_output(job, feeds.InvalidRow(e.message, reason_code=e.reason_code),
                                                 {"file": job.file, "column": e.column or ""}, f"deactivation:{n}")
                            for n, e in enumerate(refused)]
                deactivated, failures = len(passed), failures + len(refused)
        elif job.mode == "primary" and incomplete:
            note = "the file ended early: not a full snapshot, nothing deactivated"
        await self._transact(outputs)
        await self._pg(feeds.finish(self.pool, job, self.owner, rows_total=rows, bytes_read=bytes_read,
                                    commands=deactivated, failures=failures, deactivated=deactivated,
                                    snapshot=snapshot, error=note))
        log.info("import %s done: %d records, %d deactivated", job.raw_id, rows, deactivated)

    # --- helpers ----------------------------------------------------------------------------------
    async def _pg(self, coro: Any) -> Any:
        try:
            return await coro
        except PG_OUTAGE as exc:
            raise outage(exc) from exc

    async def _optional_ids(self, job: feeds.FeedJob, tenant: TenantSettings, options: dict[str, Any]
                            ) -> dict[MappingKey, str]:
        keys = feeds.batch_keys(product_feed(job.provider), [], options)
        return dict((await self._context(job, tenant, keys)).ids) if keys else {}

    async def _context(self, job: feeds.FeedJob, tenant: TenantSettings, keys: frozenset[MappingKey]
                       ) -> MappingContext:
        """The batch's keys in one query; auto-created where the tenant allows (as the mapper does)."""
        # each key's row once, and the key itself kept for it (no MappingKey rebuilt per row found)
        keyed = {(job.tenant_id, job.provider, k.entity, k.external_id): k for k in keys}
        wanted = sorted(keyed)
        found = await self.repo.load(wanted)
        if tenant.auto_create_items:
            auto = [(*w, auto_canonical_id(job.tenant_id, job.provider, keyed[w])) for w in wanted if w not in found]
            if auto:
                await self.repo.create(auto, auto_created=True)
                found.update(await self.repo.load([row[:4] for row in auto]))
        ids = {keyed[w]: c for w, c in found.items()}  # every row found is one of ``wanted``
        return MappingContext(job.tenant_id, job.provider, ids, tenant)

    def _chunks(self, job: feeds.FeedJob, records: list[tuple[str, dict[str, Any]]], tenant: TenantSettings
                ) -> list[Output]:
        return feeds.validated_outputs(job, records, tenant_to_map(tenant),
                                         max_commands=self.settings.feed_chunk_commands,
                                         max_bytes=self.settings.feed_chunk_bytes)

    async def _transact(self, outputs: list[Output]) -> None:
        if not outputs:
            return
        try:
            await self._io(self._produce_all, outputs)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise
            raise DependencyUnavailable(f"feed batch not committed: {exc}") from exc

    def _produce_all(self, outputs: list[Output]) -> None:
        self._txn.ready()  # a producer that lived through a broker outage is replaced first (see the class)
        p = self._txn.producer
        p.begin_transaction()
        try:
            produce_outputs(p, outputs, self.settings.topic)
            p.commit_transaction(60)
        except KafkaException:
            self._txn.abort()
            raise


def check_for(tenant: TenantSettings) -> feeds.Check:
    """The validator's rules, as the validator applies them to this tenant's commands."""

    def check(name: str, record: dict[str, Any]) -> dict[str, Any]:
        try:
            return validate(name, record, default_category=tenant.default_category)
        except Violation as v:
            raise InvalidField(v.message, field=v.field, reason_code=v.reason_code) from None

    return check


def _take(items: Iterator[Any], rows: int) -> list[Any]:
    """Records covering about ``rows`` file rows (a grouped record is never split)."""
    out: list[Any] = []
    covered = 0
    for record in items:
        out.append(record)
        covered += record.span
        if covered >= rows:
            break
    return out


def _skip(items: Iterator[Any], rows: int) -> None:
    """Past the records covering the first ``rows`` file rows: checkpoints fall on record boundaries."""
    skipped = 0
    while skipped < rows:
        record = next(items, None)
        if record is None:
            return
        skipped += record.span

