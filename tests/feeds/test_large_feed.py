"""A 50 MB feed: streamed through the receiver in bounded memory, and resumed after the feeds stage is killed
mid-file without losing or repeating a command."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.feeds.helpers import SECRET, upload, wait_import
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e

ROWS = 26_000
PAD = "x" * 2000  # an attribute the translation ignores: bytes to parse, not commands to write


def big_feed() -> Iterator[bytes]:
    yield b"id,title,price,notes\n"
    for start in range(0, ROWS, 500):
        yield "".join(f"L{i},Large {i},{i % 90 + 1}.00 USD,{PAD}\n"
                      for i in range(start, start + 500)).encode()


def service(stack: Stack, name: str) -> psutil.Process:
    for child in psutil.Process(stack.proc.pid).children(recursive=True):
        cmd = child.cmdline()
        if "run" in cmd and cmd[cmd.index("run") + 1:cmd.index("run") + 2] == [name]:
            return child
    raise AssertionError(f"no {name} process under pos-ingest up")


class PeakRss(threading.Thread):
    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.halt = proc, proc.memory_info().rss, threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)


def test_50mb_feed_streams_in_bounded_memory_and_resumes_after_a_crash(stack: Stack) -> None:
    size = len(b"id,title,price,notes\n") + sum(len(c) for c in list(big_feed())[1:])
    assert size > 50 * 2**20
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    receiver = service(stack, "receiver")
    before = receiver.memory_info().rss
    sampler = PeakRss(receiver)
    sampler.start()
    status, payload = upload(stack, tenant, big_feed(), query="feed=large")  # chunked: no length up front
    sampler.halt.set()
    sampler.join()
    assert status == 202, payload
    raw_id = payload["rawId"]
    growth_mb = (sampler.peak - before) / 2**20
    assert growth_mb < 40, f"receiver grew by {growth_mb:.0f} MB for a {size / 2**20:.0f} MB upload"
    stored = stack.query("SELECT size, segment_offset, segment_length, family FROM raw_payloads "
                         "WHERE raw_id = $1::uuid", raw_id)
    assert stored == [{"size": size, "segment_offset": 0, "segment_length": size, "family": "import"}]

    # kill the feeds stage once part of the file is checkpointed; the supervisor restarts it and it resumes
    feeds = service(stack, "feeds")
    deadline = time.monotonic() + 60
    seen: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        rows = stack.query("SELECT state, rows_done FROM feed_imports WHERE raw_id = $1::uuid", raw_id)
        if rows:
            seen.append((rows[0]["state"], rows[0]["rows_done"]))
            if rows[0]["rows_done"] > 0:
                break
        time.sleep(0.05)
    assert seen and seen[-1][0] == "running" and 0 < seen[-1][1] < ROWS, seen
    os.kill(feeds.pid, signal.SIGKILL)

    progress = wait_import(stack, raw_id, timeout=120)
    assert (progress["rowsDone"], progress["rowsTotal"], progress["failures"]) == (ROWS, ROWS, 0)
    assert progress["bytesRead"] == size and progress["percent"] == 100.0
    assert "resumes after record" in stack.logs("feeds")
    # every row's three commands written exactly once (the writer refuses the re-emitted batch's ids)
    stack.wait_for("SELECT count(*) AS n FROM written_commands WHERE raw_id = $1::uuid", raw_id, timeout=120,
                   check=lambda rs: rs[0]["n"] >= ROWS * 3)
    assert stack.query("SELECT count(*) AS n FROM written_commands WHERE raw_id = $1::uuid",
                       raw_id)[0]["n"] == ROWS * 3
    assert stack.query("SELECT count(*) AS n FROM failures WHERE raw_id = $1::uuid", raw_id)[0]["n"] == 0
    listed = [json.loads(line) for line in stack.cli("imports", "list", tenant).stdout.splitlines()]
    assert [row["rawId"] for row in listed] == [raw_id]
