"""The support service starts alongside the receiver; `pos-ingest ready` only waits for the receiver."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.stack import Stack


@pytest.fixture(autouse=True)
def support_up(stack: Stack) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(stack.support + "/readyz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"support did not get ready:\n{stack.logs('support')[-3000:]}")
        time.sleep(0.2)
