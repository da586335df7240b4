"""The standard adapter contract suite: every registered adapter × every recorded case."""
from __future__ import annotations

import json
import os

import pytest

from ingest.adapters.registry import registered_providers
from ingest.avro import codec
from ingest.canonical.commands import COMMAND_TYPES
from ingest.errors import InvalidSignature, UnmappedReference, UnparseablePayload, UnsupportedEvent
from tests.adapters.cases import TEST_SECRET, Case, load_cases

CASES = load_cases()
COMMAND_CASES = [c for c in CASES if c.expect == "commands"]


def _dump(commands: list) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(c.model_dump_json(by_alias=True)) | {"commandType": c.command_type} for c in commands]


@pytest.mark.parametrize("provider", registered_providers())
def test_every_registered_provider_has_recorded_cases(provider: str) -> None:
    assert [c for c in CASES if c.provider == provider], f"{provider} has no recorded cases"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_given_signed_recording_when_verified_then_accepted(case: Case) -> None:
    adapter = case.adapter()
    if adapter.auth.unsigned:
        pytest.skip("provider has no payload credential")
    headers = {**case.headers, **adapter.sign(case.body, secret=TEST_SECRET, timestamp=int(case.now.timestamp()))}
    adapter.verify_signature(headers, case.body)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_given_tampered_body_or_missing_auth_then_rejected(case: Case) -> None:
    adapter = case.adapter()
    if adapter.auth.unsigned:
        pytest.skip("provider has no payload credential")
    signed = adapter.sign(case.body, secret=TEST_SECRET, timestamp=int(case.now.timestamp()))
    headers = {**case.headers, **signed}
    if adapter.auth.covers_body:
        tampered = bytearray(case.body)
        tampered[len(tampered) // 2] ^= 0x01
        with pytest.raises(InvalidSignature):
            adapter.verify_signature(headers, bytes(tampered))
    stripped = {k: v for k, v in headers.items() if k.lower() not in {s.lower() for s in signed}}
    with pytest.raises(InvalidSignature):
        adapter.verify_signature(stripped, case.body)
    wrong = {**case.headers, **adapter.sign(case.body, secret="wrong-secret",
                                              timestamp=int(case.now.timestamp()))}
    with pytest.raises(InvalidSignature):
        adapter.verify_signature(wrong, case.body)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_given_stale_or_future_timestamp_then_rejected(case: Case) -> None:
    adapter = case.adapter()
    if not adapter.auth.timestamped:
        pytest.skip("scheme has no timestamp")
    for offset in (-3600, 3600):
        headers = {**case.headers, **adapter.sign(case.body, secret=TEST_SECRET,
                                                  timestamp=int(case.now.timestamp()) + offset)}
        with pytest.raises(InvalidSignature):
            adapter.verify_signature(headers, case.body)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_given_recording_when_parsed_then_classified(case: Case) -> None:
    adapter = case.adapter()
    if case.expect == "unsupported":
        with pytest.raises(UnsupportedEvent):
            adapter.parse(case.delivery())
        return
    if case.expect == "unparseable":
        with pytest.raises(UnparseablePayload):
            adapter.parse(case.delivery())
        return
    source = adapter.parse(case.delivery())
    assert source.event_type
    assert adapter.dedupe_key(source).startswith(f"{case.provider}:")


@pytest.mark.parametrize("case", COMMAND_CASES, ids=lambda c: c.id)
def test_given_recording_when_translated_then_golden_output(case: Case) -> None:
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    commands = adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))
    got = _dump(commands)
    expected_path = case.path / "expected.json"
    if os.environ.get("UPDATE_EXPECTED") or not expected_path.exists():
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("case", COMMAND_CASES, ids=lambda c: c.id)
def test_given_same_input_twice_then_identical_commands(case: Case) -> None:
    adapter = case.adapter()
    first = adapter.parse(case.delivery())
    second = adapter.parse(case.delivery())
    ctx = case.context(adapter.mapping_keys(first))
    assert _dump(adapter.to_canonical_commands(first, ctx)) == _dump(adapter.to_canonical_commands(second, ctx))


@pytest.mark.parametrize("case", COMMAND_CASES, ids=lambda c: c.id)
def test_every_command_encodes_against_its_avro_schema(case: Case) -> None:
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    for command in adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source))):
        data = codec().encode(command.command_type, command.to_record())
        name, record = codec().decode(data)
        assert name == command.command_type
        assert record["commandId"] == command.command_id
        # the command writer writes the event's two fields in front of the command's bytes: exactly a full encode
        event_type = COMMAND_TYPES[name].event_type
        head = {"eventId": "e-1", "eventType": event_type}
        assert codec().splice(event_type, data, record, head=head) == codec().encode(event_type, {**head, **record})


@pytest.mark.parametrize("case", COMMAND_CASES, ids=lambda c: c.id)
def test_given_one_mapping_removed_then_unmapped_reference_names_it(case: Case) -> None:
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    keys = adapter.mapping_keys(source)
    commands = adapter.to_canonical_commands(source, case.context(keys))
    if not commands:
        pytest.skip("no commands to resolve")
    used = [k for k in sorted(keys)]
    hits = 0
    for key in used:
        try:
            adapter.to_canonical_commands(source, case.context(keys, drop=key))
        except UnmappedReference as exc:
            assert (key.entity, key.external_id) in exc.missing
            hits += 1
    assert hits >= 1, "no mapping key is actually resolved"


@pytest.mark.parametrize("case", [c for c in CASES if c.meta.get("recorded_signature")], ids=lambda c: c.id)
def test_given_signature_recorded_by_sender_then_verifies_byte_exact(case: Case) -> None:
    """Guards against an algorithm that only agrees with itself: the recording was signed independently."""
    case.adapter().verify_signature(case.headers, case.body)
