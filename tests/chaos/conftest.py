"""Chaos fixtures: one stack behind fault proxies per session; the full fault list only when asked for.

``make test`` runs the short version (``harness.SHORT``); ``make chaos`` (``-m chaos`` or ``CHAOS_FULL=1``)
runs every fault and the lifecycle tests, and prints the per-fault table at the end.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import ChaosStack, FaultResult

RESULTS: list[FaultResult] = []
MEASURES: list[str] = []


def full_mode(config: pytest.Config) -> bool:
    return os.environ.get("CHAOS_FULL") == "1" or "chaos" in (config.option.markexpr or "")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault-injection suite (make chaos runs all of it)")
    config.addinivalue_line("markers", "chaos_full: only in the full chaos run (-m chaos or CHAOS_FULL=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_mode(config):
        return
    skip = pytest.mark.skip(reason="full chaos suite only: make chaos (-m chaos or CHAOS_FULL=1)")
    for item in items:
        if "chaos_full" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chaos(work_dir: Path) -> Iterator[ChaosStack]:
    c = ChaosStack(work_dir / "chaos")
    try:
        yield c
    finally:
        c.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS and not MEASURES:
        return
    terminalreporter.section("chaos results")
    for r in RESULTS:
        terminalreporter.write_line(r.line())
    for line in MEASURES:
        terminalreporter.write_line(line)
    out = Path(os.environ.get("CHAOS_RESULTS", ".run/chaos-results.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"faults": [r.as_dict() for r in RESULTS], "measures": MEASURES}, indent=1,
                              default=str))
    terminalreporter.write_line(f"(written to {out})")
