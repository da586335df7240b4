"""Validator: each command against the invariants; the good ones go on, each bad one is a failure."""
from __future__ import annotations

from ingest import topics
from ingest.avro import codec
from ingest.errors import InvalidCommand
from ingest.kafka.results import Failure, Input, Output, Result
from ingest.pipeline import each, forward_headers
from services.validator.rules import Violation, validate


def check(inp: Input) -> Result:
    default_category = (inp.record.get("tenantSettings") or {}).get("defaultCategory") or None
    good: list[bytes] = []
    failures: list[Failure] = []
    for raw in inp.record["commands"]:
        name, record = codec().decode(raw)
        try:
            checked = validate(name, record, default_category=default_category)
        except Violation as v:
            failures.append(Failure(InvalidCommand(f"{name} {record.get('commandId')}: {v.message}",
                                                   reason_code=v.reason_code),
                                    command_id=record.get("commandId"), details={"field": v.field,
                                                                                 "commandType": name}))
            continue
        good.append(raw if checked is record else codec().encode(name, checked))
    if failures and not good and inp.record["commands"]:
        return Result(failures=failures, label="failed")
    if good == inp.record["commands"]:  # nothing refused or completed: the same fields under the next schema
        value = codec().splice("Validated", inp.value, inp.record)
    else:
        value = codec().encode("Validated", {**inp.record, "commands": good})
    return Result(outputs=[Output(topics.VALIDATED, inp.key or "", value,
                                  forward_headers(inp, "Validated"))], failures=failures)


async def handle(inputs: list[Input]) -> list[Result]:
    return await each(inputs, check)
