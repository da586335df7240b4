"""The compiled Avro writers (``codec.compile_writer``) write exactly fastavro's bytes.

Recorded adapter cases and the chained stages' real records pin the common path; a property test over every
schema adds edge values (empty and non-ASCII strings, int64 bounds, pre-epoch and offset timestamps, empty
blocks) and values the writers leave to fastavro (bools as longs, tuples, naive datetimes, out-of-range ints),
where ``Codec.encode`` must still give fastavro's bytes or fastavro's error.
"""
from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.avro import codec
from ingest.avro.codec import _Uncovered
from tests.adapters.cases import load_cases

INT64 = (-(1 << 63), (1 << 63) - 1)


def fastavro_body(name: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, codec().schemas[name], record)
    return buf.getvalue()


def compiled_body(name: str, record: dict[str, Any]) -> bytes:
    writer = codec()._writers[name]
    assert writer is not None, name
    out = bytearray()
    writer(out, record)
    return bytes(out)


def test_every_schema_has_a_compiled_writer() -> None:
    assert [name for name, writer in codec()._writers.items() if writer is None] == []


def recorded_commands() -> Iterator[tuple[str, Any]]:
    """(case id, command) of every recorded adapter case that yields commands."""
    for case in load_cases():
        if case.expect != "commands":
            continue
        adapter = case.adapter()
        source = adapter.parse(case.delivery())
        for command in adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source))):
            yield case.id, command


def test_given_every_recorded_case_when_its_commands_are_written_then_fastavro_bytes() -> None:
    written = 0
    for case_id, command in recorded_commands():
        record = command.to_record()
        assert compiled_body(command.command_type, record) == fastavro_body(command.command_type, record), case_id
        written += 1
    assert written > 100


def chained_stage_values(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every value the five handlers read and write on 400 of the load generator's webhooks."""
    from bench import stages_bench

    values: list[bytes] = []
    hop = stages_bench.Chain.hop

    async def recording(self: stages_bench.Chain, runner: Any, msgs: list[Any]) -> list[Any]:
        outputs = await hop(self, runner, msgs)
        values.extend([m.value() for m in msgs] + [o.value for o in outputs])
        return outputs

    monkeypatch.setattr(stages_bench.Chain, "hop", recording)
    asyncio.run(stages_bench.run(400, 100, None))
    return values


def test_given_the_chained_stages_records_when_written_then_fastavro_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = set()
    for value in chained_stage_values(monkeypatch):
        name, record = codec().decode(value)
        assert compiled_body(name, record) == fastavro_body(name, record) == value[10:], name
        seen.add(name)
        for command in record.get("commands", []):  # the commands inside Transformed and Validated
            cname, crecord = codec().decode(command)
            assert compiled_body(cname, crecord) == fastavro_body(cname, crecord) == command[10:], cname
    assert {"RawReceived", "Deduped", "Mapped", "Transformed", "Validated", "StockLevelUpdated"} <= seen


def _tz() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))]), st.timezones())


def _value(t: Any, odd: bool) -> st.SearchStrategy[Any]:
    """Values of type ``t``; with ``odd``, also values of other Python types fastavro accepts or rejects."""
    extra: list[st.SearchStrategy[Any]] = []
    if t == "string":
        base = st.text()
        extra = [st.binary(max_size=8), st.integers(0, 9)]
    elif t == "bytes":
        base = st.binary()
        extra = [st.builds(bytearray, st.binary(max_size=8)), st.text(max_size=4)]
    elif t in ("int", "long"):
        low, high = INT64 if t == "long" else (-(1 << 31), (1 << 31) - 1)
        base = st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, -1, 63, 64, -64, -65]))
        extra = [st.booleans(), st.floats(-1e6, 1e6), st.sampled_from([low - 1, high + 1, 1 << 70])]
    elif t == "boolean":
        base = st.booleans()
        extra = [st.integers(0, 2), st.none()]
    elif isinstance(t, dict) and t.get("logicalType") == "timestamp-micros":
        base = st.datetimes(timezones=_tz())
        extra = [st.datetimes(), st.integers(*INT64)]
    elif isinstance(t, list):
        return st.one_of(st.none(), _value(t[1], odd))
    elif t["type"] == "map":
        base = st.dictionaries(st.text(max_size=6), _value(t["values"], False), max_size=4)
        extra = [st.dictionaries(st.integers(0, 3), st.text(max_size=3), min_size=1, max_size=2)]
    elif t["type"] == "array":
        base = st.lists(_value(t["items"], False), max_size=4)
        extra = [st.tuples(_value(t["items"], False))]
    else:
        base = _record(t, odd)
    return st.one_of(base, *extra) if odd else base


def _record(schema: dict[str, Any], odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields = {f["name"]: _value(f["type"], odd) for f in schema["fields"]}
    if not odd:
        return st.fixed_dictionaries(fields)
    # a field left out falls back to its default (or fastavro's error)
    return st.fixed_dictionaries({}, optional=fields)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 — the comparison is over fastavro's errors too
        return type(exc)


@pytest.mark.parametrize("name", sorted(codec().raw))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_given_any_record_when_encoded_then_fastavro_bytes_or_fastavro_error(name: str, data: st.DataObject) -> None:
    schema = codec().raw[name]
    record = data.draw(_record(schema, odd=False))
    assert compiled_body(name, record) == fastavro_body(name, record)
    odd = data.draw(_record(schema, odd=True))
    expected = _outcome(fastavro_body, name, odd)
    got = _outcome(codec().encode, name, odd)
    assert (got[10:] if isinstance(got, bytes) else got) == expected


def test_a_naive_datetime_is_left_to_fastavro() -> None:
    """fastavro reads a naive datetime as local time: the compiled writer must not guess UTC."""
    record = {"failureId": "f", "class": "c", "stage": "s", "reasonCode": "r", "message": "m", "rawId": None,
              "tenantId": None, "provider": None, "occurredAt": datetime(2026, 1, 14, 10, 15), "attempt": 0,
              "originTopic": None, "originPartition": None, "originOffset": None, "replayId": None,
              "commandId": None, "exception": None, "details": {}}
    with pytest.raises(_Uncovered):
        compiled_body("FailureRecord", record)
    assert codec().encode("FailureRecord", record)[10:] == fastavro_body("FailureRecord", record)


def test_given_the_same_wall_time_on_both_sides_of_a_dst_change_then_two_timestamps() -> None:
    """Equal (and equally hashed) datetimes an hour apart: the writer's memo of timestamps must not merge them."""
    zone = ZoneInfo("America/New_York")
    first, second = (datetime(2025, 11, 2, 1, 30, tzinfo=zone, fold=fold) for fold in (0, 1))
    assert first == second and hash(first) == hash(second)
    bodies = []
    for when in (first, second, first, datetime(2025, 11, 2, 5, 30, tzinfo=timezone.utc)):
        record = {"failureId": "f", "class": "c", "stage": "s", "reasonCode": "r", "message": "m", "rawId": None,
                  "tenantId": None, "provider": None, "occurredAt": when, "attempt": 0, "originTopic": None,
                  "originPartition": None, "originOffset": None, "replayId": None, "commandId": None,
                  "exception": None, "details": {}}
        assert compiled_body("FailureRecord", record) == fastavro_body("FailureRecord", record)
        bodies.append(compiled_body("FailureRecord", record))
    assert bodies[0] != bodies[1] and bodies[0] == bodies[2] == bodies[3]  # 01:30 EDT is 05:30 UTC
