"""``uuid5_str`` is exactly ``str(uuid.uuid5(...))``: command, event and failure ids never change with it."""
from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from ingest.ids import uuid5_str


@given(st.uuids(), st.text())
def test_uuid5_str_equals_the_standard_library(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_str(namespace, name) == str(uuid.uuid5(namespace, name))
