"""The receiver's hand-written RawReceived encoder is byte for byte the codec's (stages decode it with the
codec; dedupe, the ledger and replays compare these records)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.avro import codec
from ingest.rawlog.publisher import encode_raw_received, raw_received

_text = st.text(max_size=80)
_long = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
_when = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                 timezones=st.just(timezone(timedelta(hours=5, minutes=30)))),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(min_value=-2_208_988_800_000_000, max_value=7_258_118_400_000_000))  # 1900 … 2200 in µs


@settings(max_examples=400, deadline=None)
@given(ids=st.lists(_text, min_size=6, max_size=6), received_at=_when, content_type=_text,
       headers=st.dictionaries(_text, _text, max_size=20), sha=_text, numbers=st.lists(_long, min_size=3, max_size=3),
       segment=_text, body=st.one_of(st.none(), st.binary(max_size=3000)),
       replay_id=st.one_of(st.none(), _text), attempt=st.integers(min_value=-(2 ** 31), max_value=2 ** 31 - 1))
def test_encoder_equals_the_codec(ids: list[str], received_at: object, content_type: str, headers: dict[str, str],
                                  sha: str, numbers: list[int], segment: str, body: bytes | None,
                                  replay_id: str | None, attempt: int) -> None:
    record = raw_received(raw_id=ids[0], tenant_id=ids[1], provider=ids[2], kind=ids[3], family=ids[4],
                          route=ids[5], received_at=received_at, content_type=content_type, headers=headers,
                          sha256=sha, size=numbers[0], segment_key=segment, segment_offset=numbers[1],
                          segment_length=numbers[2], body=body, replay_id=replay_id)
    record["attempt"] = attempt
    encoded = encode_raw_received(record)
    assert encoded == codec().encode("RawReceived", record)
    assert codec().decode(encoded, "RawReceived")[1]["rawId"] == ids[0]
