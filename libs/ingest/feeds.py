"""Streamed bulk feed imports: the pure batch step (rows → commands and row failures), and their PG state.

The feeds stage (``services/feeds``) drives these: it streams an import object, cuts it into batches of
rows, and per batch calls ``translate_batch`` and the repository functions here. Progress for operators is
``import_progress`` / ``list_imports`` (the CLI and the support API call them).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from ingest import topics
from ingest.adapters.base import (
    COMMAND_ID_NAMESPACE,
    CommandFactory,
    Headers,
    ProductFeed,
    RawDelivery,
    SourceEvent,
)
from ingest.adapters.google_merchant.feed import RowError
from ingest.avro import codec
from ingest.canonical.commands import CommandBase, CommandRecord, UpsertCatalogItem
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import Fatal, IngestError, InvalidCommand, InvalidField, UnmappedReference
from ingest.ids import uuid5_str
from ingest.kafka.results import FAILURE_NAMESPACE, Failure, Output, failure_record

STAGE = "feeds"
DEFAULT_FEED = "default"
#: the most commands one file row yields (item, variant, base price, sale price, stock) — ids are per row
ROW_ID_STRIDE = 8
#: at most this share of the previous snapshot may be deactivated by one import (a truncated file is not a
#: reason to empty a catalogue); a source option ``maxDeleteRatio`` overrides it
MAX_DELETE_RATIO = 0.5


class InvalidRow(Fatal):
    """One feed record cannot be used; the rest of the file goes on."""

    failure_class = "validation"
    default_reason = "invalid_row"


@dataclass(frozen=True)
class FeedJob:
    """One import as the worker knows it (a ``feed_imports`` row plus its Deduped envelope)."""

    raw_id: str
    tenant_id: str
    provider: str
    feed_name: str
    mode: str
    object_key: str
    size: int
    content_type: str
    route: str
    received_at: datetime
    origin: str
    record: dict[str, Any]
    rows_done: int = 0

    @property
    def file(self) -> str:
        """The name failures use for the file: the upload's own name where it gave one."""
        headers = Headers(self.record.get("headers") or {})
        disposition = headers.get("Content-Disposition") or ""
        if "filename=" in disposition:
            return disposition.split("filename=", 1)[1].split(";")[0].strip().strip('"') or self.feed_name
        return headers.get("X-Feed-Name") or (self.feed_name if self.feed_name != DEFAULT_FEED else self.raw_id)

    @property
    def origin_tuple(self) -> tuple[str, int, int]:
        topic, partition, offset = self.origin.rsplit("/", 2)
        return topic, int(partition), int(offset)

    def delivery(self) -> RawDelivery:
        r = self.record
        return RawDelivery(body=b"", headers=Headers(r.get("headers") or {}), raw_id=self.raw_id,
                           tenant_id=self.tenant_id, provider=self.provider, family="import",
                           received_at=self.received_at, route=self.route, content_type=self.content_type,
                           replay_id=r.get("replayId"))


def feed_options(route: str) -> tuple[str, str]:
    """(feed name, mode) from the import URL's query: ``?feed=NAME&mode=primary|supplemental``."""
    query = parse_qs(urlsplit(route).query)
    name = (query.get("feed") or [DEFAULT_FEED])[0].strip()[:200] or DEFAULT_FEED
    mode = (query.get("mode") or ["primary"])[0]
    return name, mode if mode in ("primary", "supplemental") else "primary"


class RowCommandFactory(CommandFactory):
    """Command ids per (rawId, row, n): a resumed import re-derives exactly the ids it emitted before, whatever
    the batch around the row looks like (a mapping added meanwhile shifts nothing)."""

    def at_row(self, row: int) -> None:
        self._n = row * ROW_ID_STRIDE


class RowRecordFactory(RowCommandFactory):
    """``RowCommandFactory`` making each command as the record the stage writes (``CommandFactory.record``):
    no pydantic model per command where the values are provably what it would pass through."""

    __call__ = CommandFactory.record  # type: ignore[assignment]


def deactivation_id(raw_id: str, external_item_id: str) -> str:
    return uuid5_str(COMMAND_ID_NAMESPACE, f"{raw_id}:deactivate:{external_item_id}")


#: a command's record → the record to write (possibly completed), or ``InvalidField``: the validator's rules
Check = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class BatchResult:
    #: (command type, record) of the commands ``check`` accepted, as they are to be written
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: (record, its keys without a mapping): the record has ``file``, ``row`` and ``line``
    unmapped: list[tuple[Any, list[MappingKey]]] = field(default_factory=list)
    #: external item id → (canonical item id, name) of every item a row of this batch carried
    items: dict[str, tuple[str, str]] = field(default_factory=dict)


def batch_keys(feed: ProductFeed, records: Sequence[Any], options: dict[str, Any]) -> frozenset[MappingKey]:
    keys = set(feed.keys([r for r in records if not isinstance(r, RowError)]))
    for entity in ("merchant", "store"):
        if options.get(entity):
            keys.add(MappingKey(entity, str(options[entity])))  # type: ignore[arg-type]
    return frozenset(keys)


def translate_batch(job: FeedJob, feed: ProductFeed, records: Sequence[Any], ctx: MappingContext,
                    options: dict[str, Any], check: Check | None = None) -> BatchResult:
    """Pure: one batch of parsed records (``feed``'s) → commands, row errors, unmapped rows and the items seen.

    ``check`` (the validator's rules) runs on each command here, where its row is known: a refused value is
    that row's ``validation`` failure naming the column (the command's field), the row's other commands go on.

    Item upserts are per batch (the first row of a group in each batch names it), so a batch's output never
    depends on the batches before it and a resume at a batch boundary reproduces it exactly.
    """
    out = BatchResult()
    source = SourceEvent(event_type="feed", delivery=job.delivery())
    make = RowRecordFactory(source, ctx, merchant_id=ctx.resolve_optional("merchant", options.get("merchant")))
    store_id = ctx.resolve_optional("store", options.get("store"))
    currency = options.get("currency") or ctx.tenant.default_currency
    seen: set[str] = set()
    for record in records:
        if isinstance(record, RowError):
            out.errors.append(record)
            continue
        missing = ctx.missing(feed.keys([record]))
        if missing:
            out.unmapped.append((record, missing))
            continue
        make.at_row(record.row)
        try:
            batch = feed.commands(record, make, ctx, currency=currency, store_id=store_id, seen_items=seen)
        except InvalidCommand as exc:  # a command refusing the row's values: that row's failure, not the file's
            out.errors.append(RowError(record.file, record.row, None, exc.message, exc.reason_code, record.line))
            continue
        out.errors.extend(batch.errors)
        passed, refused = checked(batch.commands, check, record)
        out.errors.extend(refused)
        out.records.extend(passed)
        if passed:
            for external, name in batch.items.items():
                out.items[external] = (ctx.resolve("item", external),
                                       name or out.items.get(external, ("", ""))[1])
    return out


def checked(commands: Sequence[CommandBase | CommandRecord], check: Check | None, row: Any = None
            ) -> tuple[list[tuple[str, dict[str, Any]]], list[RowError]]:
    """The (type, record) of each command ``check`` accepts, as it leaves it, and a ``RowError`` (at ``row``)
    for each it refuses."""
    passed: list[tuple[str, dict[str, Any]]] = []
    refused: list[RowError] = []
    for command in commands:
        record = command.to_record()
        try:
            passed.append((command.command_type, check(command.command_type, record) if check else record))
        except InvalidField as exc:
            refused.append(RowError(row.file if row else "", row.row if row else 0, exc.field,
                                    f"{command.command_type}: {exc.message}", exc.reason_code,
                                    row.line if row else None))
    return passed, refused


def deactivations(job: FeedJob, missing: Sequence[tuple[str, str, str]], ctx: MappingContext,
                  options: dict[str, Any]) -> list[CommandBase]:
    """``UpsertCatalogItem active=false`` for (external id, canonical id, name) the new snapshot lacks."""
    source = SourceEvent(event_type="feed", delivery=job.delivery())
    make = CommandFactory(source, ctx, merchant_id=ctx.resolve_optional("merchant", options.get("merchant")))
    out: list[CommandBase] = []
    for external, item_id, name in missing:
        command = make(UpsertCatalogItem, item_id=item_id, external_item_id=external, name=name or external,
                       active=False)
        out.append(command.model_copy(update={"command_id": deactivation_id(job.raw_id, external)}))
    return out


# --- records -------------------------------------------------------------------------------------
def validated_outputs(job: FeedJob, records: Sequence[tuple[str, dict[str, Any]]], tenant_settings: dict[str, str],
                      *, max_commands: int = 500, max_bytes: int = 512 * 1024) -> list[Output]:
    """``Validated`` envelopes of at most ``max_commands`` checked commands and about ``max_bytes`` each, straight
    to the command writer (the worker applied the validator's rules per row): no record nears the broker's size
    limit, and a feed costs no validator hop (one decode and one encode of every command fewer)."""
    r = job.record
    base = {"rawId": job.raw_id, "tenantId": job.tenant_id, "provider": job.provider, "family": "import",
            "receivedAt": job.received_at, "replayId": r.get("replayId"), "dedupeKey": r.get("dedupeKey", ""),
            "eventType": "feed", "tenantSettings": tenant_settings}
    headers = {"raw-id": job.raw_id, "tenant-id": job.tenant_id, "provider": job.provider, "type": "Validated"}
    out: list[Output] = []
    chunk: list[bytes] = []
    size = 0

    def close() -> None:
        out.append(Output(topics.VALIDATED, f"{job.tenant_id}:-:{job.provider}",
                          codec().encode("Validated", {**base, "commands": chunk}), headers))

    encode = codec().encode
    for name, record in records:
        encoded = encode(name, record)
        if chunk and (len(chunk) >= max_commands or size + len(encoded) > max_bytes):
            close()
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    if chunk:
        close()
    return out


def failure_output(job: FeedJob, error: IngestError, details: dict[str, str], key: str) -> Output:
    """A failure record whose id is fixed by (rawId, what failed): re-emitting after a resume stores nothing
    twice."""
    raw = {"rawId": job.raw_id, "tenantId": job.tenant_id, "provider": job.provider,
           "replayId": job.record.get("replayId")}
    rec = failure_record(None, Failure(error, details=details), stage=STAGE, index=0, origin=job.origin_tuple,
                         raw=raw)
    rec["failureId"] = uuid5_str(FAILURE_NAMESPACE, f"{job.raw_id}:{raw['replayId'] or ''}:{STAGE}:{key}")
    topic, partition, offset = job.origin_tuple
    return Output(topics.FAILURES, f"{job.tenant_id}:-:{job.raw_id}", codec().encode("FailureRecord", rec),
                  {"raw-id": job.raw_id, "tenant-id": job.tenant_id, "provider": job.provider,
                   "type": "FailureRecord", "stage": STAGE, "origin-topic": topic,
                   "origin-partition": str(partition), "origin-offset": str(offset),
                   "exception": rec["exception"] or ""})


def row_error_output(job: FeedJob, err: RowError) -> Output:
    details = {"file": err.file, "row": str(err.row), "column": err.column or "", "line": str(err.line or "")}
    return failure_output(job, InvalidRow(str(err), reason_code=err.reason_code), details,
                          f"row:{err.row}:{err.column or ''}:{err.reason_code}")


def unmapped_output(job: FeedJob, row: Any, missing: Sequence[MappingKey]) -> Output:
    names = ", ".join(str(k) for k in missing)
    error = UnmappedReference(f"{row.file}: row {row.row}: no mapping for {names}",
                              missing=[(k.entity, k.external_id) for k in missing])
    details = {"file": row.file, "row": str(row.row), "column": "id", "line": str(row.line or "")}
    return failure_output(job, error, details, f"row:{row.row}:unmapped")


# --- PostgreSQL -----------------------------------------------------------------------------------
JOB_COLUMNS = ("raw_id, tenant_id, provider, feed_name, mode, object_key, size, content_type, route, received_at, "
               "origin, record, rows_done")


async def register(conn: asyncpg.Pool | asyncpg.Connection, jobs: Sequence[tuple[dict[str, Any], str, bytes]]
                   ) -> None:
    """(Deduped record, origin, encoded record) → a queued import; a record seen again changes nothing."""
    if not jobs:
        return
    rows = []
    for record, origin, encoded in jobs:
        name, mode = feed_options(record.get("route", ""))
        rows.append((record["rawId"], record["tenantId"], record["provider"], name, mode, record["segmentKey"],
                     record["size"], record.get("contentType", ""), record.get("route", ""), record["receivedAt"],
                     origin, encoded))
    await conn.executemany(
        "INSERT INTO feed_imports (raw_id, tenant_id, provider, feed_name, mode, object_key, size, content_type, "
        "route, received_at, origin, record) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        "ON CONFLICT (raw_id) DO NOTHING", rows)


async def claim(conn: asyncpg.Pool, owner: str, lease_s: float) -> FeedJob | None:
    """The oldest unfinished import nobody holds (or that this owner held before a restart), leased to us."""
    row = await conn.fetchrow(
        f"UPDATE feed_imports SET state = 'running', owner = $1, lease_until = now() + make_interval(secs => $2), "
        f"started_at = COALESCE(started_at, now()), updated_at = now() WHERE raw_id = ("
        f"SELECT raw_id FROM feed_imports WHERE state IN ('queued', 'running') AND "
        f"(owner IS NULL OR owner = $1 OR lease_until < now()) ORDER BY created_at LIMIT 1 "
        f"FOR UPDATE SKIP LOCKED) RETURNING {JOB_COLUMNS}", owner, lease_s)
    if row is None:
        return None
    _, record = codec().decode(bytes(row["record"]), "Deduped")
    return FeedJob(str(row["raw_id"]), row["tenant_id"], row["provider"], row["feed_name"], row["mode"],
                   row["object_key"], row["size"], row["content_type"], row["route"], row["received_at"],
                   row["origin"], record, row["rows_done"])


async def checkpoint(conn: asyncpg.Pool, raw_id: str, owner: str, lease_s: float, *, rows_done: int,
                     bytes_read: int, commands: int, failures: int,
                     items: Sequence[tuple[str, str, str]]) -> None:
    """After a batch's Kafka transaction committed: the rows it covered, its counts, the items it carried."""
    async with conn.acquire() as c, c.transaction():
        if items:
            cols = list(zip(*items))
            await c.execute(
                "INSERT INTO feed_import_items (raw_id, external_item_id, item_id, name) "
                "SELECT $1::uuid, x, i, n FROM unnest($2::text[], $3::text[], $4::text[]) AS t(x, i, n) "
                "ON CONFLICT (raw_id, external_item_id) DO UPDATE SET "
                "name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE feed_import_items.name END",
                raw_id, list(cols[0]), list(cols[1]), list(cols[2]))
        await c.execute(
            "UPDATE feed_imports SET rows_done = $2, bytes_read = $3, commands = commands + $4, "
            "failures = failures + $5, lease_until = now() + make_interval(secs => $7), updated_at = now() "
            "WHERE raw_id = $1::uuid AND owner = $6", raw_id, rows_done, bytes_read, commands, failures, owner,
            lease_s)


async def previous_snapshot_missing(conn: asyncpg.Pool, job: FeedJob) -> tuple[int, list[tuple[str, str, str]]]:
    """(size of the last complete snapshot of this feed, its items this import did not carry)."""
    prev = await conn.fetchval("SELECT raw_id FROM feed_snapshots WHERE tenant_id = $1 AND provider = $2 AND "
                               "feed_name = $3", job.tenant_id, job.provider, job.feed_name)
    if prev is None or str(prev) == job.raw_id:
        return 0, []
    total = await conn.fetchval("SELECT count(*) FROM feed_import_items WHERE raw_id = $1", prev)
    rows = await conn.fetch(
        "SELECT p.external_item_id, p.item_id, p.name FROM feed_import_items p WHERE p.raw_id = $1 AND NOT EXISTS "
        "(SELECT 1 FROM feed_import_items c WHERE c.raw_id = $2::uuid AND c.external_item_id = p.external_item_id) "
        "ORDER BY p.external_item_id", prev, job.raw_id)
    return int(total), [(r["external_item_id"], r["item_id"], r["name"]) for r in rows]


async def finish(conn: asyncpg.Pool, job: FeedJob, owner: str, *, rows_total: int, bytes_read: int,
                 commands: int, failures: int, deactivated: int, snapshot: bool, error: str | None = None) -> None:
    """The import is done; a complete primary import becomes its feed's snapshot (the previous one's item set
    is dropped: only the latest is ever diffed against)."""
    async with conn.acquire() as c, c.transaction():
        await c.execute(
            "UPDATE feed_imports SET state = 'done', rows_done = $2, rows_total = $2, bytes_read = $3, "
            "commands = commands + $4, failures = failures + $5, deactivated = $6, error = $8, finished_at = now(), "
            "updated_at = now(), lease_until = NULL WHERE raw_id = $1::uuid AND owner = $7",
            job.raw_id, rows_total, bytes_read, commands, failures, deactivated, owner, error)
        if snapshot:
            prev = await c.fetchval("SELECT raw_id FROM feed_snapshots WHERE tenant_id = $1 AND provider = $2 AND "
                                    "feed_name = $3 FOR UPDATE", job.tenant_id, job.provider, job.feed_name)
            await c.execute(
                "INSERT INTO feed_snapshots (tenant_id, provider, feed_name, raw_id) VALUES ($1, $2, $3, $4::uuid) "
                "ON CONFLICT (tenant_id, provider, feed_name) DO UPDATE SET raw_id = EXCLUDED.raw_id, "
                "completed_at = now()", job.tenant_id, job.provider, job.feed_name, job.raw_id)
            if prev is not None and str(prev) != job.raw_id:
                await c.execute("DELETE FROM feed_import_items WHERE raw_id = $1", prev)
        else:
            await c.execute("DELETE FROM feed_import_items WHERE raw_id = $1::uuid", job.raw_id)


async def fail(conn: asyncpg.Pool, raw_id: str, owner: str, error: str) -> None:
    await conn.execute("UPDATE feed_imports SET state = 'failed', error = $2, finished_at = now(), updated_at = now(), "
                       "lease_until = NULL WHERE raw_id = $1::uuid AND owner = $3", raw_id, error[:2000], owner)


async def source_options(conn: asyncpg.Pool, tenant_id: str, provider: str) -> dict[str, Any]:
    import json

    value = await conn.fetchval("SELECT options FROM sources WHERE tenant_id = $1 AND provider = $2",
                                tenant_id, provider)
    if value is None:
        return {}
    return value if isinstance(value, dict) else dict(json.loads(value))


# --- progress (CLI and support API) -------------------------------------------------------------------
PROGRESS_COLUMNS = ("raw_id, tenant_id, provider, feed_name, mode, state, size, bytes_read, rows_done, rows_total, "
                    "commands, failures, deactivated, error, created_at, started_at, updated_at, finished_at")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def progress_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of an import's progress: rows done / total (estimated from bytes until the end)."""
    rows_done, total, size, read = row["rows_done"], row["rows_total"], row["size"], row["bytes_read"]
    estimated = None
    if total is None and read and rows_done:
        estimated = int(rows_done * size / read)
    return {"rawId": str(row["raw_id"]), "tenantId": row["tenant_id"], "provider": row["provider"],
            "feed": row["feed_name"], "mode": row["mode"], "state": row["state"], "rowsDone": rows_done,
            "rowsTotal": total, "rowsTotalEstimated": estimated, "bytes": size, "bytesRead": read,
            "percent": round(100.0 * (rows_done / total if total else (read / size if size else 0)), 1),
            "commands": row["commands"], "failures": row["failures"], "deactivated": row["deactivated"],
            "error": row["error"], "createdAt": _iso(row["created_at"]), "startedAt": _iso(row["started_at"]),
            "updatedAt": _iso(row["updated_at"]), "finishedAt": _iso(row["finished_at"])}


async def import_progress(conn: asyncpg.Pool | asyncpg.Connection, raw_id: str, *, tenant_id: str | None = None
                          ) -> dict[str, Any] | None:
    """One import's progress, or None (unknown id, or another tenant's when ``tenant_id`` is given)."""
    try:
        uuid.UUID(raw_id)
    except ValueError:
        return None
    row = await conn.fetchrow(f"SELECT {PROGRESS_COLUMNS} FROM feed_imports WHERE raw_id = $1::uuid AND "
                              "($2::text IS NULL OR tenant_id = $2)", raw_id, tenant_id)
    return progress_view(row) if row else None


async def list_imports(conn: asyncpg.Pool | asyncpg.Connection, tenant_id: str, *, limit: int = 50
                       ) -> list[dict[str, Any]]:
    """A tenant's imports, newest first."""
    rows = await conn.fetch(f"SELECT {PROGRESS_COLUMNS} FROM feed_imports WHERE tenant_id = $1 "
                            "ORDER BY created_at DESC LIMIT $2", tenant_id, limit)
    return [progress_view(r) for r in rows]
