"""The compiled Avro readers (``codec.compile_reader``) read exactly what fastavro reads.

Same values of the same Python types (bool is not int, aware UTC datetimes, fields in schema order), on the
recorded adapter cases, the chained stages' real records, every schema's edge values, and on corrupt bytes:
whatever the reader does not take as it is goes to fastavro, so ``Codec.decode`` answers fastavro's value or
raises ``DecodeError`` where fastavro raises.
"""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.avro import codec
from ingest.avro.codec import DecodeError
from tests.unit.test_codec_writer import _record, chained_stage_values, recorded_commands

FASTAVRO = object()  # fastavro raised


def fastavro_read(data: bytes) -> Any:
    name = codec()._by_fp[bytes(data[2:10])]
    try:
        return fastavro.schemaless_reader(io.BytesIO(data[10:]), codec().schemas[name], None)
    except Exception:  # noqa: BLE001 — any fastavro error is "refused"
        return FASTAVRO


def compiled_read(data: bytes) -> dict[str, Any]:
    reader = codec()._readers[codec()._by_fp[bytes(data[2:10])]]
    assert reader is not None
    return reader(data, 10)


def assert_same(got: Any, expected: Any, where: str = "") -> None:
    """Equal, of the same type at every level, dict keys in the same order, datetimes in the same zone."""
    assert type(got) is type(expected), (where, got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for n, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{n}]")
    elif isinstance(expected, datetime):
        assert (got, got.tzinfo, got.fold) == (expected, expected.tzinfo, expected.fold), where
    else:
        assert got == expected, where


def test_every_schema_has_a_compiled_reader() -> None:
    assert [name for name, reader in codec()._readers.items() if reader is None] == []


def test_given_every_recorded_case_when_its_commands_are_read_then_fastavro_values() -> None:
    read = 0
    for case_id, command in recorded_commands():
        data = codec().encode(command.command_type, command.to_record())
        assert_same(compiled_read(data), fastavro_read(data), case_id)
        assert_same(codec().decode(data)[1], fastavro_read(data), case_id)
        read += 1
    assert read > 100


def test_given_the_chained_stages_records_when_read_then_fastavro_values(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = set()
    for value in chained_stage_values(monkeypatch):
        record = compiled_read(value)
        assert_same(record, fastavro_read(value), "")
        seen.add(codec().decode(value)[0])
        for command in record.get("commands", []):  # the commands inside Transformed and Validated
            assert_same(compiled_read(command), fastavro_read(command), "")
    assert {"RawReceived", "Deduped", "Mapped", "Transformed", "Validated", "StockLevelUpdated"} <= seen


def _decode(data: bytes) -> Any:
    try:
        return codec().decode(data)[1]
    except DecodeError:
        return FASTAVRO


@pytest.mark.parametrize("name", sorted(codec().raw))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_given_any_record_or_corrupt_bytes_when_decoded_then_what_fastavro_reads(name: str,
                                                                                 data: st.DataObject) -> None:
    record = data.draw(_record(codec().raw[name], odd=False))
    encoded = codec().encode(name, record)
    if fastavro_read(encoded) is FASTAVRO:  # a value fastavro writes but cannot read back (before year 1 in UTC)
        assert _decode(encoded) is FASTAVRO
    else:
        assert_same(compiled_read(encoded), fastavro_read(encoded), name)
    # corrupt: cut short, a byte changed, bytes inserted or appended — the same answer as fastavro, or both refuse
    cut = data.draw(st.integers(10, len(encoded)))
    at = data.draw(st.integers(10, max(10, len(encoded) - 1)))
    junk = data.draw(st.binary(min_size=1, max_size=4))
    for corrupt in (encoded[:cut], encoded[:at] + bytes([encoded[at] ^ 0xFF]) + encoded[at + 1:],
                    encoded[:at] + junk + encoded[at:], encoded + junk):
        expected = fastavro_read(corrupt)
        got = _decode(corrupt)
        if expected is FASTAVRO:
            assert got is FASTAVRO, name
        else:
            assert_same(got, expected, name)


def _price(**overrides: Any) -> dict[str, Any]:
    when = datetime(2026, 12, 3, 10, 15, 30, 123456, tzinfo=timezone.utc)
    return {"commandId": "c", "commandType": "UpdatePrice", "tenantId": "t", "provider": "p", "rawId": "r",
            "occurredAt": when, "receivedAt": when, "merchantId": None, "storeId": "s", "itemId": "i",
            "externalItemId": "x", "variantId": None, "amountMinor": 1999, "currency": "INR", "priceType": "base",
            **overrides}


@pytest.mark.parametrize("when", [
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),   # negative, 1-byte varint
    datetime(1970, 1, 1, tzinfo=timezone.utc),
    datetime(1970, 1, 2, tzinfo=timezone.utc),                         # 6 bytes: not memoised
    datetime(1800, 1, 1, tzinfo=timezone.utc),
    datetime(2026, 1, 14, 10, 15, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
])
def test_given_timestamps_of_any_length_when_read_then_fastavro_datetimes(when: datetime) -> None:
    for _ in range(2):  # the second read comes from the memo where there is one
        data = codec().encode("UpdatePrice", _price(occurredAt=when))
        assert_same(compiled_read(data), fastavro_read(data))


def test_given_varints_written_longer_than_needed_then_fastavro_reads_them() -> None:
    """Valid but non-canonical encodings (a writer may pad a varint): the reader leaves them to fastavro."""
    data = codec().encode("UpdatePrice", _price())
    body = bytearray(data)
    null = data.index(b"\x00", 10)  # merchantId: union index 0
    padded = bytes(body[:null]) + b"\x80\x00" + bytes(body[null + 1:])
    assert fastavro_read(padded) == fastavro_read(data)
    assert_same(codec().decode(padded)[1], fastavro_read(padded))


def test_given_a_map_block_with_its_byte_size_then_read() -> None:
    """Avro lets a writer give a negative block count followed by the block's size in bytes."""
    record = {"failureId": "f", "class": "c", "stage": "s", "reasonCode": "r", "message": "m", "rawId": None,
              "tenantId": None, "provider": None, "occurredAt": datetime(2026, 1, 14, tzinfo=timezone.utc),
              "attempt": 0, "originTopic": None, "originPartition": None, "originOffset": None, "replayId": None,
              "commandId": None, "exception": None, "details": {"a": "b"}}
    data = codec().encode("FailureRecord", record)
    block = b"\x02\x02a\x02b\x00"  # count 1, "a" → "b", end
    assert data.endswith(block)
    sized = data[:-len(block)] + b"\x01\x08" + block[1:]  # count -1, 4 bytes
    assert_same(compiled_read(sized), fastavro_read(sized))
    assert compiled_read(sized)["details"] == {"a": "b"}
