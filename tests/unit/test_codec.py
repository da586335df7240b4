"""Single-object encoding pinned to bytes; every schema parses; models and schemas agree."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from ingest.avro import DecodeError, codec, crc64_avro
from ingest.canonical.commands import COMMAND_TYPES

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_crc64_matches_an_independent_implementation() -> None:
    for name, raw in codec().raw.items():
        canonical = to_parsing_canonical_form(fastavro.parse_schema(raw))
        assert crc64_avro(canonical.encode()).to_bytes(8, "little").hex() == fingerprint(canonical, "CRC-64-AVRO")
        assert codec().fingerprint(name).hex() == fingerprint(canonical, "CRC-64-AVRO")


def test_given_fixed_record_when_encoded_then_exact_bytes() -> None:
    record = {"failureId": "f-1", "class": "auth", "stage": "receiver", "reasonCode": "stale_timestamp",
              "message": "timestamp too old", "occurredAt": datetime(2026, 1, 14, 10, 15, tzinfo=timezone.utc)}
    data = codec().encode("FailureRecord", record)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec().fingerprint("FailureRecord")
    body = data[10:]
    # strings are zig-zag length-prefixed UTF-8; nulls are union branch 0; the timestamp is zig-zag varint
    # micros: 1768385700 s × 10**6 × 2 = 80c4cb97cc95a406
    assert body.hex() == (
        "0666" "2d31" "0861757468" "107265636569766572" "1e7374616c655f74696d657374616d70"
        "2274696d657374616d7020746f6f206f6c64" "00" "00" "00" "80c4cb97cc95a406" "00" "00" "00" "00" "00" "00"
        "00" "00")
    assert codec().decode(data)[1]["occurredAt"] == record["occurredAt"]


def test_given_garbage_when_decoded_then_decode_error() -> None:
    for data in (b"", b"{}", b"\xc3\x01" + b"\x00" * 8, b"\xc3\x01" + codec().fingerprint("RawReceived") + b"\xff"):
        with pytest.raises(DecodeError):
            codec().decode(data)


def test_every_command_model_agrees_with_its_schema() -> None:
    for name, cls in COMMAND_TYPES.items():
        schema = json.loads((SCHEMAS / "commands" / f"{name}.avsc").read_text())
        fields = [f["name"] for f in schema["fields"]]
        model_fields = [f.alias or k for k, f in cls.model_fields.items()]
        assert set(fields) == set(model_fields) | {"commandType"}, name
        event = json.loads((SCHEMAS / "events" / f"{cls.event_type}.avsc").read_text())
        assert [f["name"] for f in event["fields"]] == ["eventId", "eventType", *fields]


def _stage_records() -> dict[str, dict]:
    """One real record per envelope and command, as the chained stages produce them from a recorded payload."""
    import asyncio

    from bench.stages_bench import Chain, raw_messages

    chain = Chain()
    seen: dict[str, dict] = {}

    async def run() -> None:
        current = raw_messages(60)
        topics_ = ["integration.deduped", "integration.mapped", "integration.transformed", "integration.validated"]
        for n, runner in enumerate(chain.runners):
            for inp in runner._decode(current)[0]:
                seen.setdefault(inp.schema, {"value": inp.value, "record": inp.record})
            outputs = await chain.hop(runner, current)
            if n < len(topics_):
                from bench.stages_bench import FakeMessage
                current = [FakeMessage(topics_[n], 0, k, o.key.encode(), o.value, []) for k, o in enumerate(outputs)
                           if o.topic == topics_[n]]

    asyncio.run(run())
    return seen


@pytest.fixture(scope="module")
def stage_records() -> dict[str, dict]:
    return _stage_records()


@pytest.mark.parametrize("target,source,head,tail", [
    ("Deduped", "RawReceived", {}, {"dedupeKey": "acme:evt-1"}),
    ("Mapped", "Deduped", {}, {"mappings": [{"entity": "item", "externalId": "A", "canonicalId": "c-1",
                                             "autoCreated": True}], "tenantSettings": {"timezone": "UTC"},
                                 "zeroItems": ["SKU-1"]}),
    ("Validated", "Transformed", {}, {}),
])
def test_given_an_envelope_when_spliced_then_bytes_equal_a_full_encode(stage_records, target, source, head,
                                                                        tail) -> None:
    given = stage_records[source]
    spliced = codec().splice(target, given["value"], given["record"], head=head, tail=tail)
    assert spliced == codec().encode(target, {**head, **given["record"], **tail})
    assert codec().decode(spliced)[0] == target


def test_given_layouts_that_do_not_line_up_when_spliced_then_the_whole_record_is_encoded(stage_records) -> None:
    given = stage_records["RawReceived"]
    # RawReceived is not the first fields of Validated: splice must fall back to a full encode, never guess
    record = {"rawId": "r", "tenantId": "t", "provider": "p", "family": "f", "receivedAt": given["record"]["receivedAt"],
              "replayId": None, "dedupeKey": "k", "eventType": "x", "tenantSettings": {}, "commands": []}
    assert codec().splice("Validated", given["value"], record) == codec().encode("Validated", record)
    assert codec().splice("Deduped", b"", given["record"], tail={"dedupeKey": "k"}) == \
        codec().encode("Deduped", {**given["record"], "dedupeKey": "k"})
