"""The support API through the running service: auth, payload log and search, payload page, failure groups,
fixing a mapping (auto re-drive), resolve/ignore, replay jobs (estimate, start, progress, cancel), CSV, retention."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.stack import Stack
from tests.support.helpers import api, send, tenant_with_partial_mappings, wms_event

pytestmark = pytest.mark.e2e


def test_auth_health_and_users(stack: Stack) -> None:
    status, body = api(stack, "GET", "/api/v1/payloads", token=None)
    assert status == 401 and body["error"]["code"] == 401
    assert api(stack, "GET", "/api/v1/payloads", token="wrong")[0] == 401
    assert api(stack, "GET", "/healthz", token=None)[0] == 200
    assert api(stack, "GET", "/readyz", token=None)[0] == 200
    name = f"agent-{uuid.uuid4().hex[:6]}"
    status, created = api(stack, "POST", "/api/v1/users", {"name": name})
    assert status == 201 and created["token"].startswith("sup_")
    assert api(stack, "GET", "/api/v1/whoami", token=created["token"])[1] == {"name": name, "role": "support"}
    assert api(stack, "POST", "/api/v1/users", {"name": "x"}, token=created["token"])[0] == 403
    stored = stack.query("SELECT token_hash FROM support_users WHERE name = $1", name)[0]["token_hash"]
    assert created["token"].encode() not in bytes(stored)
    status, metrics = api(stack, "GET", "/metrics", token=None)
    assert status == 200 and b"pos_ingest_replay_jobs" in metrics


def test_mapping_failure_found_grouped_fixed_and_redriven(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    sku = f"SKU-{uuid.uuid4().hex[:6]}"
    raw_ids = [send(stack, tenant, wms_event(sku, str(n))) for n in range(3)]
    other = send(stack, tenant, wms_event(f"OTHER-{uuid.uuid4().hex[:6]}"))
    stack.wait_for("SELECT raw_id FROM failures WHERE tenant_id = $1 AND class = 'mapping'", tenant,
                   check=lambda rows: len(rows) == 4)

    # payload log: filters, external id and field search
    status, page = api(stack, "GET", f"/api/v1/payloads?tenant={tenant}&class=mapping")
    assert status == 200 and {p["rawId"] for p in page["items"]} == {*raw_ids, other}
    assert all(p["status"] == "failed" and p["lastFailure"]["class"] == "mapping" for p in page["items"])
    stack.wait_for("SELECT raw_id FROM raw_search WHERE tenant_id = $1", tenant, check=lambda r: len(r) == 4)
    by_ext = api(stack, "GET", f"/api/v1/payloads?tenant={tenant}&externalId={sku}")[1]["items"]
    assert {p["rawId"] for p in by_ext} == set(raw_ids)
    by_field = api(stack, "GET", f"/api/v1/payloads?tenant={tenant}&field=data.quantity_after&value=1")[1]["items"]
    assert [p["rawId"] for p in by_field] == [raw_ids[1]]
    assert api(stack, "GET", f"/api/v1/payloads?rawId={other}")[1]["items"][0]["rawId"] == other
    assert api(stack, "GET", "/api/v1/payloads?status=nope")[0] == 400

    # payload page: exact body, redacted headers, the trail stopping at the mapper
    detail = api(stack, "GET", f"/api/v1/payloads/{raw_ids[0]}")[1]
    assert json.loads(detail["body"])["data"]["sku"] == sku and detail["bodyPretty"].startswith("{\n")
    assert {k.lower(): v for k, v in detail["headers"].items()}["webhook-signature"] == "[redacted]"
    steps = {s["stage"]: s for s in detail["trail"][0]["steps"]}
    assert steps["dedupe"]["state"] == "ok" and steps["mapper"]["state"] == "failed"
    assert steps["mapper"]["reasonCode"] == "unmapped_reference" and steps["validator"]["state"] == "not reached"
    exact = api(stack, "GET", f"/api/v1/payloads/{raw_ids[0]}/body")[1]
    assert exact == json.loads(detail["body"])  # served with the payload's own content type

    # failures grouped, and the missing mapping listed with its payload count
    groups = api(stack, "GET", f"/api/v1/failures/groups?tenant={tenant}")[1]
    group = next(g for g in groups["groups"] if g["class"] == "mapping")
    assert group["payloads"] == 4 and group["firstSeen"] <= group["lastSeen"]
    missing = {m["externalId"]: m["payloads"] for m in groups["missingMappings"]}
    assert missing[sku] == 3

    # fix the mapping: the three payloads go through without a manual replay; the fourth stays failed
    status, fixed = api(stack, "POST", "/api/v1/mappings", {"tenant": tenant, "provider": "inhouse-wms", "mappings": [
        {"entity": "item", "externalId": sku, "canonicalId": "item-fixed"}]})
    assert status == 200 and fixed["redrive"]["resolved"] == 3 and fixed["redrive"]["job"]["total"] == 3
    stack.wait_for("SELECT raw_id FROM raw_payloads WHERE raw_id = ANY($1::uuid[]) AND status = 'processed'",
                   raw_ids, check=lambda rows: len(rows) == 3)
    rows = stack.query("SELECT resolution FROM failures WHERE raw_id = ANY($1::uuid[])", raw_ids)
    assert {r["resolution"] for r in rows} == {"auto-redriven"}
    assert stack.query("SELECT status FROM raw_payloads WHERE raw_id = $1::uuid", other)[0]["status"] == "failed"
    after = api(stack, "GET", f"/api/v1/payloads/{raw_ids[0]}")[1]
    assert len(after["replays"]) == 1 and after["trail"][-1]["replayId"] == after["replays"][0]["replayId"]
    last = {s["stage"]: s for s in after["trail"][-1]["steps"]}
    assert last["command-writer"]["state"] == "ok" and last["command-writer"]["commands"]

    # ignore the remaining failure with a note: kept in history
    failure_id = api(stack, "GET", f"/api/v1/payloads/{other}")[1]["failures"][0]["failureId"]
    status, done = api(stack, "POST", f"/api/v1/failures/{failure_id}/resolve",
                       {"resolution": "ignored", "note": "test item, never sold"})
    assert status == 200 and done["resolution"] == "ignored"
    history = api(stack, "GET", f"/api/v1/payloads/{other}")[1]["history"]
    assert history[-1]["action"] == "failure.ignored" and history[-1]["details"]["note"] == "test item, never sold"


def test_replay_job_estimate_start_progress_cancel(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    raw_ids = [send(stack, tenant, wms_event(f"R-{n}")) for n in range(12)]
    stack.wait_for("SELECT raw_id FROM failures WHERE tenant_id = $1", tenant, check=lambda r: len(r) == 12)
    selection = {"filter": {"tenant": tenant, "class": "mapping"}}
    assert api(stack, "POST", "/api/v1/replays/estimate", selection)[1]["count"] == 12
    assert api(stack, "POST", "/api/v1/replays", {"filter": {}})[0] == 400

    status, job = api(stack, "POST", "/api/v1/replays", {**selection, "ratePerS": 1000})
    assert status == 202 and job["total"] == 12
    final = stack.wait_for("SELECT state, done FROM replay_jobs WHERE job_id = $1::uuid", job["jobId"],
                           check=lambda r: r[0]["state"] == "done")
    assert final[0]["done"] == 12
    audited = stack.query("SELECT target FROM audit_log WHERE action = 'raw.replay' AND details->>'jobId' = $1",
                          job["jobId"])
    assert sorted(r["target"] for r in audited) == sorted(raw_ids)
    stack.wait_for("SELECT raw_id FROM failures WHERE tenant_id = $1 AND replay_id IS NOT NULL", tenant,
                   check=lambda r: len(r) == 12)  # the replays went through the pipeline again (and failed again)

    slow = api(stack, "POST", "/api/v1/replays", {**selection, "ratePerS": 1})[1]
    status, cancelled = api(stack, "POST", f"/api/v1/replays/{slow['jobId']}/cancel")
    assert status == 200 and cancelled["state"] == "cancelled" and cancelled["handled"] < 12
    assert api(stack, "POST", f"/api/v1/replays/{slow['jobId']}/cancel")[0] == 409
    assert any(j["jobId"] == slow["jobId"] for j in api(stack, "GET", "/api/v1/replays")[1]["items"])


def test_cli_replay_drives_the_same_job(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    for n in range(3):
        send(stack, tenant, wms_event(f"C-{n}"))
    stack.wait_for("SELECT raw_id FROM failures WHERE tenant_id = $1", tenant, check=lambda r: len(r) == 3)
    out = stack.cli("replay", "--class", "mapping", "--tenant", tenant, "--provider", "inhouse-wms",
                    "--since=-1h", "--rate", "500")
    job = json.loads(out.stdout)
    assert job["state"] == "done" and job["replayed"] == 3 and "3/3" in out.stderr
    assert stack.query("SELECT kind FROM replay_jobs WHERE job_id = $1::uuid", job["jobId"])[0]["kind"] == "cli"


def test_mapping_csv_import_export(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    csv_text = b"entity,external_id,canonical_id\nitem,A-1,item-a\nitem,B-2,item-b\n"
    status, res = api(stack, "POST", f"/api/v1/mappings/import?tenant={tenant}&provider=inhouse-wms", raw=csv_text,
                      content_type="text/csv")
    assert status == 200 and res["upserted"] == 2
    exported = api(stack, "GET", f"/api/v1/mappings/export?tenant={tenant}&provider=inhouse-wms")[1].decode()
    assert "item,A-1,item-a" in exported and "store,DS-BLR-KOR-01,store-kor" in exported
    status, bad = api(stack, "POST", f"/api/v1/mappings/import?tenant={tenant}&provider=inhouse-wms",
                      raw=b"entity,external_id\nitem,x\n", content_type="text/csv")
    assert status == 400 and "canonical_id" in bad["error"]["details"]


def test_mapping_import_and_add_refuse_what_they_cannot_store_whole(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tenant = tenant_with_partial_mappings(stack, tmp_path)
    before = api(stack, "GET", f"/api/v1/mappings?tenant={tenant}")[1]["items"]

    def imports(body: bytes, t: str = tenant, provider: str = "inhouse-wms") -> tuple[int, Any]:
        return api(stack, "POST", f"/api/v1/mappings/import?tenant={t}&provider={provider}", raw=body,
                   content_type="text/csv")

    status, bad = imports(b"entity,external_id,canonical_id\nitem,D1,item-1\nitem,OK,ok\nitem,D1,item-2\n")
    assert status == 400 and "line 4" in bad["error"]["details"] and "line 2" in bad["error"]["details"]
    status, bad = imports(b"entity,external_id,canonical_id\nitem,\xff,x\n")
    assert status == 400 and "UTF-8" in bad["error"]["details"]
    status, bad = imports(b"entity,external_id,canonical_id\nitem,I1,item-1\n", t=f"ghost{uuid.uuid4().hex[:6]}")
    assert status == 400 and "unknown tenant" in bad["error"]["details"]
    status, bad = imports(b"entity,external_id,canonical_id\nitem,I1,item-1\n", provider="no-such-provider")
    assert status == 400 and "unknown provider" in bad["error"]["details"]
    status, bad = api(stack, "POST", "/api/v1/mappings", {"tenant": tenant, "provider": "inhouse-wms", "mappings": [
        {"entity": "item", "externalId": "Q", "canonicalId": "q1"},
        {"entity": "item", "externalId": "Q", "canonicalId": "q2"}]})
    assert status == 400 and "row 2" in bad["error"]["details"]
    assert api(stack, "GET", f"/api/v1/mappings?tenant={tenant}")[1]["items"] == before
    # the same row twice is one mapping, entity names are case-insensitive
    status, res = imports(b"entity,external_id,canonical_id\nItem,S1,item-s\nitem,S1,item-s\n")
    assert status == 200 and res["upserted"] == 1


def test_retention_partitions_and_lifecycle(stack: Stack) -> None:
    # expired idempotency keys and WMS snapshots: an abandoned and a superseded one go, the newest completed stays
    stack.query("INSERT INTO idempotency_keys (tenant_id, idem_key, request_hash, response_status, response_body, "
                "created_at) VALUES ('ret', 'old', 'h', 202, '{}', now() - interval '2 days'), "
                "('ret', 'new', 'h', 202, '{}', now())")
    stack.query("INSERT INTO stock_snapshots (tenant_id, provider, facility, snapshot_id, as_of, page_count, "
                "completed_by, updated_at) VALUES "
                "('ret', 'inhouse-wms', 'f', 'abandoned', now() - interval '3 years', 2, NULL, now() - interval '3 years'),"
                "('ret', 'inhouse-wms', 'f', 'superseded', now() - interval '3 years', 1, 'r1', now() - interval '3 years'),"
                "('ret', 'inhouse-wms', 'f', 'newest', now() - interval '2 years', 1, 'r2', now() - interval '2 years')")
    status, report = api(stack, "POST", "/api/v1/retention/apply")
    assert [r["idem_key"] for r in stack.query("SELECT idem_key FROM idempotency_keys WHERE tenant_id = 'ret'")] == \
        ["new"]
    assert [r["snapshot_id"] for r in stack.query("SELECT snapshot_id FROM stock_snapshots WHERE tenant_id = 'ret'")] \
        == ["newest"]
    assert status == 200 and report["s3ExpirationDays"] > 300
    parts = stack.query("SELECT c.relname, c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'raw_payloads'::regclass")
    names = {r["relname"] for r in parts}
    assert len([n for n in names if n.startswith("raw_payloads_p")]) >= 3
    # every partition, new ones included, keeps room on its pages for HOT status updates (migration 0009)
    assert all(r["reloptions"] == ["fillfactor=80"] for r in parts), parts
    # nothing of this month is left in the default partition: the current partition holds it
    assert stack.query("SELECT count(*) AS n FROM raw_payloads_default WHERE received_at > now() - interval '1 day'"
                       )[0]["n"] == 0
    out = json.loads(stack.cli("retention", "apply").stdout)
    assert out["created"] == [] and "cutoff" in out


def test_bulk_import_progress_in_the_api_and_on_its_payload(stack: Stack) -> None:
    from tests.feeds.helpers import SECRET, upload, wait_import
    from tests.stack import new_tenant

    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    body = b"id,title,price,availability\nP1,Pan,3.00 USD,in_stock\nP2,Pot,,sometimes\n"
    status, payload = upload(stack, tenant, body, query="feed=kitchen", headers={"X-Feed-Name": "kitchen.csv"})
    assert status == 202
    wait_import(stack, payload["rawId"])
    status, one = api(stack, "GET", f"/api/v1/imports/{payload['rawId']}")
    assert status == 200 and (one["state"], one["rowsDone"], one["rowsTotal"], one["failures"]) == ("done", 2, 2, 1)
    status, listed = api(stack, "GET", f"/api/v1/imports?tenant={tenant}")
    assert status == 200 and [i["rawId"] for i in listed["items"]] == [payload["rawId"]]
    assert api(stack, "GET", f"/api/v1/payloads/{payload['rawId']}")[1]["import"]["rowsDone"] == 2
    assert api(stack, "GET", "/api/v1/imports")[0] == 400
    assert api(stack, "GET", f"/api/v1/imports/{uuid.uuid4()}")[0] == 404
    assert api(stack, "GET", "/api/v1/imports/not-a-uuid")[0] == 404
