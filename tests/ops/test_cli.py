"""Contract §8 from the operator's side: exit codes, messages on stderr, no tracebacks for user errors."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.stack import Stack, new_tenant

HEADER = "entity,external_id,canonical_id\n"


def fails(stack: Stack, *args: str, code: int | None = None, says: str = "") -> str:
    """Run a command that must fail cleanly: non-zero, a message on stderr, no Python traceback."""
    result = stack.cli(*args, check=False)
    assert result.returncode != 0, f"pos-ingest {' '.join(args)} succeeded:\n{result.stdout}"
    if code is not None:
        assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip(), "no message on stderr"
    assert says.lower() in result.stderr.lower(), result.stderr
    return result.stderr


def mappings(stack: Stack, tenant: str) -> list[tuple[str, str, str]]:
    rows = stack.query("SELECT entity, external_id, canonical_id FROM mappings WHERE tenant_id = $1 "
                       "ORDER BY entity, external_id", tenant)
    return [(r["entity"], r["external_id"], r["canonical_id"]) for r in rows]


# --- tenants -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Bad_Name", "a.b", "-x", "x" * 70, "Acme"])
def test_tenants_add_refuses_a_name_that_is_not_a_dns_label(stack: Stack, name: str) -> None:
    fails(stack, "tenants", "add", "--", name, code=2, says="tenant")


def test_tenants_add_again_keeps_the_settings_it_is_not_told_to_change(stack: Stack) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    first = stack.cli("tenants", "add", tenant, "--auto-create-items", "--timezone", "Asia/Kolkata")
    assert "created" in first.stdout
    again = stack.cli("tenants", "add", tenant)  # an operator making sure it exists
    assert "auto-create items: on" in again.stdout
    row = stack.query("SELECT auto_create_items, timezone FROM tenants WHERE tenant_id = $1", tenant)[0]
    assert row["auto_create_items"] is True and row["timezone"] == "Asia/Kolkata"
    stack.cli("tenants", "add", tenant, "--no-auto-create-items")
    assert stack.query("SELECT auto_create_items FROM tenants WHERE tenant_id = $1", tenant)[0][
        "auto_create_items"] is False


def test_tenants_add_refuses_an_unknown_timezone_or_currency(stack: Stack) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    fails(stack, "tenants", "add", tenant, "--timezone", "Mars/Olympus", code=2, says="timezone")
    fails(stack, "tenants", "add", tenant, "--currency", "rupees", code=2, says="currency")
    assert not stack.query("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant)


# --- sources -----------------------------------------------------------------------------------
def test_sources_add_refuses_an_empty_secret_and_bad_options(stack: Stack) -> None:
    tenant = new_tenant(stack)
    fails(stack, "sources", "add", tenant, "inhouse-wms", "--secret", "", code=2, says="secret")
    fails(stack, "sources", "add", tenant, "inhouse-wms", "--options", "{not json", code=2, says="--options")
    fails(stack, "sources", "add", tenant, "no-such-provider", "--secret", "s", code=2, says="unknown provider")


# --- keys --------------------------------------------------------------------------------------
@pytest.mark.parametrize("duration,seconds", [("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 5400),
                                              ("2w", 14 * 86400), ("30", 30 * 86400)])
def test_keys_issue_expires_in(stack: Stack, duration: str, seconds: int) -> None:
    from datetime import datetime, timezone

    tenant = new_tenant(stack)
    issued = json.loads(stack.cli("keys", "issue", tenant, "--expires-in", duration).stdout)
    left = (datetime.fromisoformat(issued["expiresAt"].replace("Z", "+00:00")) - datetime.now(timezone.utc))
    assert abs(left.total_seconds() - seconds) < 120


@pytest.mark.parametrize("duration", ["abc", "P30D", "0d", "10y", "1.5h"])
def test_keys_issue_refuses_a_duration_it_cannot_read(stack: Stack, duration: str) -> None:
    tenant = new_tenant(stack)
    fails(stack, "keys", "issue", tenant, "--expires-in", duration, code=2, says="--expires-in")
    assert not stack.query("SELECT 1 FROM api_keys WHERE tenant_id = $1", tenant)


def test_keys_revoke_and_list_errors(stack: Stack) -> None:
    tenant = new_tenant(stack)
    key = json.loads(stack.cli("keys", "issue", tenant).stdout)["apiKeyId"]
    assert stack.cli("keys", "revoke", str(key)).returncode == 0
    again = stack.cli("keys", "revoke", str(key))  # the wanted state: not an error, but said
    assert "already revoked" in again.stdout
    fails(stack, "keys", "revoke", "99999999", code=1, says="no API key 99999999")
    fails(stack, "keys", "revoke", "abc", code=2, says="key id")
    fails(stack, "keys", "revoke", "99999999999999999999", code=2, says="key id")
    fails(stack, "keys", "list", f"ghost{uuid.uuid4().hex[:6]}", code=2, says="unknown tenant")


# --- mappings import ---------------------------------------------------------------------------
def test_mappings_import_reads_bom_crlf_quotes_extra_columns_and_case(stack: Stack, tmp_path: Path) -> None:
    tenant = new_tenant(stack)
    f = tmp_path / "m.csv"
    f.write_bytes(b"\xef\xbb\xbfEntity, External_ID ,canonical_id,note\r\nmerchant,M1,m-1,x\r\n"
                  b'Store,"S,1",store-1,\r\n\r\nitem,I1,item-1,"a ""quoted"" note"\r\n'
                  b"item,I1,item-1,the same row twice is one mapping\r\n")
    out = stack.cli("mappings", "import", tenant, "inhouse-wms", str(f)).stdout
    assert "3 mappings" in out
    assert mappings(stack, tenant) == [("item", "I1", "item-1"), ("merchant", "M1", "m-1"),
                                       ("store", "S,1", "store-1")]


def test_mappings_import_names_every_bad_line_and_imports_nothing(stack: Stack, tmp_path: Path) -> None:
    tenant = new_tenant(stack)
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + "item,OK1,item-ok\nwidget,W1,w-1\nitem,,item-x\nitem,D1,item-d1\nitem,OK2,ok2\n"
                 "item,D1,item-d2\n")
    err = fails(stack, "mappings", "import", tenant, "inhouse-wms", str(f), code=2)
    assert f"{f}:3:" in err and "widget" in err
    assert f"{f}:4:" in err and "external_id" in err
    assert f"{f}:7:" in err and "line 5" in err  # conflicting duplicate names both lines
    assert mappings(stack, tenant) == []


@pytest.mark.parametrize("content,says", [(b"", "empty"), (HEADER.encode(), "no mapping rows"),
                                          (b"entity;external_id;canonical_id\nitem;I;i\n", "missing columns"),
                                          (HEADER.encode() + b"item,\xff\xfe,x\n", "UTF-8")])
def test_mappings_import_refuses_files_without_usable_rows(stack: Stack, tmp_path: Path, content: bytes,
                                                          says: str) -> None:
    tenant = new_tenant(stack)
    f = tmp_path / "m.csv"
    f.write_bytes(content)
    fails(stack, "mappings", "import", tenant, "inhouse-wms", str(f), code=2, says=says)


def test_mappings_import_refuses_unknown_tenant_provider_or_file(stack: Stack, tmp_path: Path) -> None:
    tenant = new_tenant(stack)
    f = tmp_path / "m.csv"
    f.write_text(HEADER + "item,I1,item-1\n")
    ghost = f"ghost{uuid.uuid4().hex[:6]}"
    fails(stack, "mappings", "import", ghost, "inhouse-wms", str(f), code=2, says="unknown tenant")
    fails(stack, "mappings", "import", tenant, "no-such-provider", str(f), code=2, says="unknown provider")
    fails(stack, "mappings", "import", tenant, "inhouse-wms", str(tmp_path / "nope.csv"), code=2, says="nope.csv")
    fails(stack, "mappings", "import", tenant, "inhouse-wms", str(tmp_path), code=2)
    assert mappings(stack, tenant) == [] and mappings(stack, ghost) == []


# --- events, raw, failures, replay -------------------------------------------------------------
def test_events_tail_refuses_nonsense_limits(stack: Stack) -> None:
    fails(stack, "events", "tail", "catalog.commands", "--max", "-1", "--timeout", "1", code=2, says="--max")
    fails(stack, "events", "tail", "catalog.commands", "--timeout", "-1", code=2, says="--timeout")
    err = fails(stack, "events", "tail", "no.such.topic", "--timeout", "1", code=2, says="unknown topic")
    assert "catalog.commands" in err  # says which topics there are


def test_events_tail_says_once_that_the_broker_is_not_there(stack: Stack) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ingest.cli", "events", "tail", "catalog.commands", "--timeout",
                             "1"], env={**stack.env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "broker 127.0.0.1:9" in result.stderr and len(result.stderr.splitlines()) <= 2, result.stderr


def test_raw_show_accepts_any_uuid_spelling_and_refuses_the_rest(stack: Stack) -> None:
    some = str(uuid.uuid4())
    for spelling in (some.upper(), "{" + some + "}", "urn:uuid:" + some, some.replace("-", "")):
        fails(stack, "raw", "show", spelling, code=1, says=f"no raw payload {some}")
    fails(stack, "raw", "show", "not-a-uuid", code=2, says="not a raw id")


def test_failures_list_and_replay_refuse_times_they_cannot_read(stack: Stack) -> None:
    fails(stack, "failures", "list", "--since", "yesterday", code=2, says="not a time")
    fails(stack, "failures", "list", "--until", "soon", code=2, says="not a time")
    fails(stack, "replay", "--class", "mapping", "--since", "garbage", code=2, says="not a time")
    fails(stack, "replay", "--class", "mapping", "--since", "2026-12-03T18:30:00Z", "--until",
          "2026-12-03T18:00:00Z", code=2, says="--since")
    assert stack.cli("failures", "list", "--since", "2026-12-03T18:00:00+05:30", "--until",
                     "2099-01-01T00:00:00Z").returncode == 0


def test_replay_refuses_ids_that_are_not_raw_ids_and_mixing_ids_with_filters(stack: Stack) -> None:
    fails(stack, "replay", "not-a-uuid", code=2, says="not a raw id")
    fails(stack, "replay", str(uuid.uuid4()), "--class", "mapping", code=2, says="not both")
    missing = str(uuid.uuid4())
    err = fails(stack, "replay", missing, code=1, says=missing)
    assert "no raw payload" in err
