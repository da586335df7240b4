"""Failure recorder: stores dead letters and outcomes, and moves each raw payload's status forward."""
from __future__ import annotations

from typing import Any, Protocol

from ingest.kafka.results import Input, Result


class Ledger(Protocol):
    async def record(self, failures: list[dict[str, Any]], outcomes: list[dict[str, Any]],
                     statuses: list[tuple[str, str, str]]) -> None:
        """Idempotent: failure ids and (rawId, replay) outcomes are unique."""


def status_of_failure(record: dict[str, Any]) -> str:
    return "duplicate" if record["class"] == "duplicate" else "failed"


async def handle(inputs: list[Input], *, ledger: Ledger) -> list[Result]:
    failures = [i.record for i in inputs if i.schema == "FailureRecord"]
    outcomes = [i.record for i in inputs if i.schema == "PayloadOutcome"]
    statuses = [(f["rawId"], status_of_failure(f), f["stage"]) for f in failures if f.get("rawId")]
    statuses += [(o["rawId"], o["outcome"], o["stage"]) for o in outcomes]
    await ledger.record(failures, outcomes, statuses)
    return [Result(label="recorded") for _ in inputs]
