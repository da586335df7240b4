"""Feeds stage handler: each import record becomes a queued ``feed_imports`` row (one statement per batch)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ingest.avro import codec
from ingest.kafka.results import Input, Result


class ImportQueue(Protocol):
    async def register(self, jobs: list[tuple[dict[str, Any], str, bytes]]) -> None:
        """(Deduped record, origin, encoded record) rows; idempotent per rawId."""


async def handle(inputs: list[Input], *, queue: ImportQueue, wake: Callable[[], None]) -> list[Result]:
    # the offset commits only after the row is in PostgreSQL: an import is never acknowledged and then lost
    await queue.register([(i.record, i.origin, codec().encode("Deduped", i.record)) for i in inputs])
    wake()
    # no output and no outcome here: the worker's Validated records carry the import on, and the command
    # writer's outcome (or the row failures) close it in the ledger
    return [Result(label="queued") for _ in inputs]
