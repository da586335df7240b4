"""docs/partner-api.md is true: every curl example in it, run as written with bash and curl against the running
stack, gets the answer the guide shows, and the events it promises appear."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.stack import ROOT, Stack, new_tenant

pytestmark = pytest.mark.e2e
GUIDE = ROOT / "docs" / "partner-api.md"


def examples() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "$BASE" in b]


def outputs(text: str) -> list[dict[str, Any]]:
    """curl -s prints bodies back to back without newlines: decode them one after another."""
    decoder, out, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        value, end = decoder.raw_decode(text, at)
        out.append(value)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return out


def test_every_curl_example_in_the_guide(stack: Stack) -> None:
    tenant = new_tenant(stack)
    key = json.loads(stack.cli("keys", "issue", tenant).stdout.splitlines()[0])["apiKey"]
    port = stack.receiver.rsplit(":", 1)[1]
    env = {"BASE": f"http://{tenant}.localhost:{port}", "KEY": key, "PATH": "/usr/bin:/bin"}
    accepted: list[str] = []
    blocks = examples()
    assert len(blocks) >= 9
    for block in blocks:
        script = "\n".join(line for line in block.splitlines() if not line.startswith(("BASE=", "KEY=")))
        done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (block, done.stderr)
        answers = outputs(done.stdout)
        assert answers, block
        for answer in answers:
            if "error" in answer:
                # the two examples that show an error on purpose: a naive date-time, and another tenant's rawId
                assert ("no UTC offset" in answer["error"]["details"] and answer["error"]["code"] == 400) or \
                    (answer["error"]["code"] == 404 and "/api/v1/operations/" in block), (block, answer)
            elif "rawId" in answer and answer.get("status") == "accepted":
                accepted.append(answer["rawId"])
            else:
                assert answer == {"authenticated": True, "tenantId": tenant, "apiKeyId": answer["apiKeyId"],
                                  "expiresAt": None}, (block, answer)
    # the idempotency example printed the same rawId twice
    assert len(accepted) > len(set(accepted))
    deadline, pending = time.monotonic() + 90, set(accepted)
    while pending and time.monotonic() < deadline:
        rows = stack.query("SELECT raw_id::text AS r, status FROM raw_payloads WHERE raw_id = ANY($1::uuid[])",
                           list(pending))
        pending -= {r["r"] for r in rows if r["status"] in ("processed", "failed", "duplicate", "skipped")}
        time.sleep(0.3)
    assert not pending, f"never finished: {pending}"
    statuses = {r["r"]: r["status"] for r in stack.query(
        "SELECT raw_id::text AS r, status FROM raw_payloads WHERE raw_id = ANY($1::uuid[])", list(set(accepted)))}
    # everything the guide sends is processed: outlets and products are declared by the calls themselves
    failed = stack.query("SELECT raw_id::text AS r, class, reason_code, message FROM failures "
                         "WHERE raw_id = ANY($1::uuid[]) AND class <> 'duplicate'", list(set(accepted)))
    assert not failed, failed
    assert set(statuses.values()) <= {"processed", "duplicate"}, statuses
    tail = stack.cli("events", "tail", "store-status.events", "--from-beginning", "--timeout", "5")
    mine = [json.loads(line) for line in tail.stdout.splitlines() if tenant in line]
    assert {e["status"] for e in mine} >= {"OPEN", "CLOSED", "BUSY"}
