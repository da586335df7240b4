"""Coverage-guided fuzzing (atheris) of every adapter, seeded with its recorded cases: no input ends as anything but
commands or a classified IngestError, none takes longer than 10 s. ``make test`` runs 10,000 inputs per adapter,
``make chaos`` 100,000 (``tests/chaos/atheris_adapters.py``; a crash leaves its input in the test's tmp dir)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ingest.adapters.registry import registered_providers

RUNS = 100_000 if os.environ.get("CHAOS_FULL") == "1" else 10_000


@pytest.mark.parametrize("provider", registered_providers())
def test_coverage_guided_fuzzing_finds_no_unclassified_error(provider: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    out = subprocess.run([sys.executable, "-m", "tests.chaos.atheris_adapters", provider, f"-runs={RUNS}",
                          "-max_len=8192", "-timeout=10", "-seed=7", f"-artifact_prefix={tmp_path}/", str(corpus)],
                         capture_output=True, text=True, timeout=600,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    tail = "\n".join((out.stdout + out.stderr).splitlines()[-40:])
    assert out.returncode == 0, f"{provider}: atheris found a crash or a hang:\n{tail}"
    done = re.search(r"#(\d+)\s+DONE\s+cov: (\d+)", out.stderr)
    assert done and int(done.group(1)) >= RUNS, tail  # it really ran the inputs
