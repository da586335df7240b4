"""``uuid5_str`` is exactly ``str(uuid.uuid5(...))``: command, event and failure ids never change with it."""
from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from ingest.ids import uuid5_str


@given(st.uuids(), st.text())
def test_uuid5_str_equals_the_standard_library(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_str(namespace, name) == str(uuid.uuid5(namespace, name))


def test_uuid4_str_is_a_random_rfc4122_version_4_uuid_in_canonical_text() -> None:
    from ingest.ids import uuid4_str

    ids = [uuid4_str() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
