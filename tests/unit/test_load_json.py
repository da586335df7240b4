"""``load_json`` gives exactly what the plain strict ``json.loads`` it replaced gave: the value, or the same
UnparseablePayload (reason code and message) for duplicate keys, NaN/Infinity, bad UTF-8, BOMs and deep nesting."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.adapters.base import load_json
from ingest.errors import UnparseablePayload


def reference(raw: bytes) -> Any:
    """The implementation before the shared decoder: a per-call ``json.loads`` with a per-key hook."""

    def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        text = raw.decode("utf-8-sig")
        return json.loads(text, object_pairs_hook=_no_dupes, parse_constant=_no_constants)
    except RecursionError as exc:
        raise UnparseablePayload("JSON nested too deeply", reason_code="too_deep") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnparseablePayload(f"not valid JSON: {str(exc)[:200]}", reason_code="invalid_json") from exc


def outcome(fn: Any, raw: bytes) -> Any:
    try:
        return ("value", fn(raw))
    except UnparseablePayload as exc:
        return ("unparseable", exc.reason_code, str(exc))


def assert_same(raw: bytes) -> None:
    got, expected = outcome(load_json, raw), outcome(reference, raw)
    assert got == expected
    if got[0] == "value":  # == says 1 == 1.0 == True; the types must agree too
        assert json.dumps(got[1]) == json.dumps(expected[1])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(JSON, st.sampled_from([b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf", b" "]))
def test_given_json_documents_then_same_values(value: Any, prefix: bytes) -> None:
    assert_same(prefix + json.dumps(value, ensure_ascii=False).encode())


@settings(max_examples=400, deadline=None)
@given(JSON, st.binary(max_size=3), st.integers(min_value=0))
def test_given_damaged_documents_then_same_errors(value: Any, junk: bytes, at: int) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    at %= len(raw) + 1
    assert_same(raw[:at] + junk + raw[at:])
    assert_same(raw[:at] + raw[at + 1:])


def test_given_the_cases_the_contract_names_then_same_errors() -> None:
    for raw in (b'{"a": 1, "a": 2}', b'{"x": {"b": [], "c": 1, "b": {}}}', b'[{"k": 1}, {"k": 1, "k": 1}]',
                b'{"a": NaN}', b"[Infinity]", b"-Infinity", b'{"a": "\xff"}', b"\xef\xbb\xbf\xff",
                b"\xef\xbb", b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf{}", b'{"a": 1}\xef\xbb\xbf',
                b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b'"\\ud800"',
                b'{"\\u0061": 1, "a": 2}', b"1e400", b"-0", b"123456789012345678901234567890"):
        assert_same(raw)
    assert outcome(load_json, b'{"a": 1, "b": 2, "a": 3}') == \
        ("unparseable", "invalid_json", "not valid JSON: duplicate key 'a'")
    assert outcome(load_json, b"[" * 100_000)[1] == "too_deep"
