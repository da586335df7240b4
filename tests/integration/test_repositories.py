"""PostgreSQL repositories: claims, mappings, the ledger tables."""
from __future__ import annotations

import uuid

import pytest

from ingest.db import repositories
from ingest.db.pool import create_pool

pytestmark = pytest.mark.integration


async def _raw_row(pool: object, raw_id: str, provider: str = "shopify", family: str = "products/update") -> None:
    await pool.execute(  # type: ignore[attr-defined]
        "INSERT INTO raw_payloads (raw_id, received_at, tenant_id, provider, kind, family, route, segment_key, "
        "segment_offset, segment_length, sha256, size) VALUES ($1::uuid, now(), 'acme', $2, 'seller', $3, '/', 'k', "
        "0, 10, '', 10)", raw_id, provider, family)


async def test_claim_first_wins_same_origin_is_ours(database: str) -> None:
    pool = await create_pool(database)
    try:
        key, raw_a, raw_b = f"k-{uuid.uuid4()}", str(uuid.uuid4()), str(uuid.uuid4())
        first = await repositories.claim(pool, "dedupe_keys", "dedupe_key", [(key, raw_a, "t/0/1")])
        assert first[key] == (True, raw_a)
        again_same_origin = await repositories.claim(pool, "dedupe_keys", "dedupe_key", [(key, raw_a, "t/0/1")])
        assert again_same_origin[key] == (True, raw_a)
        other = await repositories.claim(pool, "dedupe_keys", "dedupe_key", [(key, raw_b, "t/0/9")])
        assert other[key] == (False, raw_a)
        cid = str(uuid.uuid4())
        written = await repositories.claim(pool, "written_commands", "command_id", [(cid, raw_a, "v/1/2")])
        assert written[cid] == (True, raw_a)
    finally:
        await pool.close()


async def test_claim_of_a_key_listed_twice_belongs_to_its_first_occurrence(database: str) -> None:
    pool = await create_pool(database)
    try:
        cid, raw_a, raw_b = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        both = await repositories.claim(pool, "written_commands", "command_id", [(cid, raw_a, "v/0/1"),
                                                                                 (cid, raw_b, "v/0/2")])
        assert both == {cid: (True, raw_a)}
        assert (await repositories.claim(pool, "written_commands", "command_id", [(cid, raw_b, "v/0/2")]))[cid] == \
            (False, raw_a)
        reclaimed: set[str] = set()
        again = await repositories.claim(pool, "written_commands", "command_id", [(cid, raw_a, "v/0/1")],
                                         reclaimed=reclaimed)
        assert again[cid] == (True, raw_a) and reclaimed == {cid}
    finally:
        await pool.close()


async def test_mappings_load_in_one_query_and_import_overwrites(database: str) -> None:
    pool = await create_pool(database)
    try:
        t = f"m{uuid.uuid4().hex[:8]}"
        await repositories.upsert_mappings(pool, [(t, "p", "store", "S1", "c-1"), (t, "p", "item", "I1", "c-2")])
        found = await repositories.load_mappings(pool, [(t, "p", "store", "S1"), (t, "p", "item", "I1"),
                                                        (t, "p", "item", "missing")])
        assert found == {(t, "p", "store", "S1"): "c-1", (t, "p", "item", "I1"): "c-2"}
        await repositories.upsert_mappings(pool, [(t, "p", "store", "S1", "c-9")])
        assert (await repositories.load_mappings(pool, [(t, "p", "store", "S1")]))[(t, "p", "store", "S1")] == "c-9"
        await repositories.upsert_mappings(pool, [(t, "p", "store", "S1", "auto")], auto_created=True, overwrite=False)
        assert (await repositories.load_mappings(pool, [(t, "p", "store", "S1")]))[(t, "p", "store", "S1")] == "c-9"
    finally:
        await pool.close()


async def test_source_secrets_are_encrypted_at_rest_and_rotate(database: str) -> None:
    from ingest.crypto import SecretBox

    pool = await create_pool(database)
    box = SecretBox(None)
    try:
        t = f"s{uuid.uuid4().hex[:8]}"
        await repositories.add_tenant(pool, t)
        for secret in ("one", "two", "three"):
            await repositories.add_source_secret(pool, box, t, "shopify", secret)
        source = await repositories.load_source(pool, box, t, "shopify")
        assert source is not None and source.secrets == ["three", "two"]  # the newest two stay active
        raw = await pool.fetch("SELECT secret_enc FROM source_secrets s JOIN sources USING (source_id) "
                               "WHERE tenant_id = $1", t)
        assert all(b"three" not in bytes(r["secret_enc"]) for r in raw)
    finally:
        await pool.close()


async def test_audit_log_is_append_only(database: str) -> None:
    import asyncpg

    pool = await create_pool(database)
    try:
        await repositories.audit(pool, "test", "thing.done", target="x")
        with pytest.raises(asyncpg.exceptions.RaiseError):
            await pool.execute("DELETE FROM audit_log")
    finally:
        await pool.close()


async def test_stock_state_facility_skus_and_snapshot_progress_round_trip_and_merge(database: str) -> None:
    from datetime import datetime, timezone

    from services.mapper.app import PostgresStockRepository
    from services.mapper.snapshots import SnapshotProgress

    pool = await create_pool(database)
    try:
        t = f"w{uuid.uuid4().hex[:8]}"
        fac, other = (t, "inhouse-wms", "m/F1"), (t, "inhouse-wms", "m/F2")
        s1, s2 = (*fac, "S1"), (*fac, "S2")
        at = datetime(2026, 1, 14, 10, tzinfo=timezone.utc)
        await repositories.add_tenant(pool, t)
        await repositories.configure_source(pool, t, "inhouse-wms", options={"snapshot_max_zero_ratio": 0.25})
        repo = PostgresStockRepository(pool)
        await repo.save_stock({fac: {"A", "B"}, other: {"Z"}}, {s1: SnapshotProgress(at, 2, frozenset({2}),
                                                                                    frozenset({"B"}))})
        # another page (and SKUs seen again): pages and listed SKUs are unions, SKUs stay one row each
        await repo.save_stock({fac: {"B", "C"}}, {s1: SnapshotProgress(at, 2, frozenset({1}), frozenset({"A"}))})
        state = await repo.stock_state([s1, s2])
        assert state.facilities[fac].skus == {"A", "B", "C"} and state.facilities[fac].max_zero_ratio == 0.25
        assert state.facilities[fac].newest is None and s2 not in state.snapshots
        assert state.snapshots[s1] == SnapshotProgress(at, 2, frozenset({1, 2}), frozenset({"A", "B"}))

        done = SnapshotProgress(at, 2, frozenset({1, 2}), frozenset(), "raw-1", "zeroed", ("C",), 1, 3)
        await repo.save_stock({}, {s1: done})
        # a completion is never overwritten, whoever writes later
        await repo.save_stock({}, {s1: SnapshotProgress(at, 2, frozenset({1, 2}), frozenset(), "raw-2", "guarded",
                                                        (), 2, 3)})
        state = await repo.stock_state([s1])
        assert state.snapshots[s1] == done and state.facilities[fac].newest == at
        assert (await repo.stock_state([(*other, "S9")])).facilities[other].max_zero_ratio == 0.25
        assert (await repo.stock_state([("nobody", "inhouse-wms", "F", "S")])).facilities[
            ("nobody", "inhouse-wms", "F")].max_zero_ratio == 0.5  # no source row: the default
    finally:
        await pool.close()


async def test_a_bulk_import_is_in_flight_until_its_worker_is_through_the_file(database: str) -> None:
    """Its first chunk's outcome must not close the import in the ledger while the rest of the file is unread."""
    from pydantic import SecretStr

    from ingest.ledger import payload_rows
    from ingest.settings import CommonSettings

    raw_id = str(uuid.uuid4())
    pool = await create_pool(database, min_size=1, max_size=1)
    try:
        await _raw_row(pool, raw_id, "google-merchant", "import")
        await pool.execute(
            "INSERT INTO feed_imports (raw_id, tenant_id, provider, feed_name, mode, object_key, size, received_at, "
            "origin, record, state) VALUES ($1::uuid, 'acme', 'google-merchant', 'f', 'primary', 'k', 10, now(), "
            "'integration.imports/0/1', ''::bytea, 'running')", raw_id)
        await pool.execute(
            "INSERT INTO outcomes (raw_id, replay_key, stage, outcome, event_type, command_ids, command_types, topics, "
            "duplicate_command_ids, reason, occurred_at) VALUES ($1::uuid, '', 'command-writer', 'processed', 'feed', "
            "ARRAY['c-1'], ARRAY['UpdatePrice'], ARRAY['catalog.commands'], ARRAY[]::text[], '', now())", raw_id)
        settings = CommonSettings(database_url=SecretStr(database))
        rows = await payload_rows(settings, tenant="acme")
        assert [r["bucket"] for r in rows if r["raw_id"] == raw_id] == ["in_flight"]
        await pool.execute("UPDATE feed_imports SET state = 'done' WHERE raw_id = $1::uuid", raw_id)
        rows = await payload_rows(settings, tenant="acme")
        assert [r["bucket"] for r in rows if r["raw_id"] == raw_id] == ["with_commands"]
    finally:
        await pool.close()


async def test_outcomes_of_a_batch_are_one_statement_and_a_repeat_is_ignored(database: str) -> None:
    from datetime import datetime, timezone

    when = datetime(2026, 12, 3, 17, 0, 0, 123000, tzinfo=timezone.utc)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    rec = {"rawId": a, "stage": "command-writer", "outcome": "processed", "eventType": "products/update",
           "commandIds": ["c-1", "c-2"], "commandTypes": ["UpsertCatalogItem", "UpdatePrice"],
           "topics": ["catalog.commands"], "duplicateCommandIds": [], "occurredAt": when}
    skipped = {"rawId": b, "replayId": "r-1", "stage": "mapper", "outcome": "skipped", "reason": "ping",
               "occurredAt": when}
    pool = await create_pool(database)
    try:
        await repositories.insert_outcomes(pool, [rec, skipped, {**rec, "commandIds": ["other"]}])
        await repositories.insert_outcomes(pool, [rec])  # a reprocessed batch
        rows = {r["raw_id"]: dict(r) for r in await pool.fetch(
            "SELECT raw_id::text, replay_key, stage, outcome, event_type, command_ids, command_types, topics, "
            "duplicate_command_ids, reason, occurred_at FROM outcomes WHERE raw_id = ANY($1::uuid[])", [a, b])}
        assert rows[a] == {"raw_id": a, "replay_key": "", "stage": "command-writer", "outcome": "processed",
                           "event_type": "products/update", "command_ids": ["c-1", "c-2"],
                           "command_types": ["UpsertCatalogItem", "UpdatePrice"], "topics": ["catalog.commands"],
                           "duplicate_command_ids": [], "reason": "", "occurred_at": when}
        assert (rows[b]["replay_key"], rows[b]["outcome"], rows[b]["reason"], rows[b]["command_ids"]) == \
            ("r-1", "skipped", "ping", [])
    finally:
        await pool.close()


async def test_the_status_update_leaves_every_index_alone(database: str) -> None:
    """HOT: no index covers status, and the page has room (migration 0009); the status still only moves forward."""
    raw_id = str(uuid.uuid4())
    pool = await create_pool(database, min_size=1, max_size=1)
    try:
        await _raw_row(pool, raw_id)

        async def hot_updates() -> tuple[int, int]:
            await pool.execute("SELECT pg_stat_force_next_flush()")
            row = await pool.fetchrow("SELECT sum(n_tup_upd) AS u, sum(n_tup_hot_upd) AS h FROM pg_stat_user_tables "
                                      "WHERE relname LIKE 'raw_payloads%'")
            return int(row["u"] or 0), int(row["h"] or 0)

        before = await hot_updates()
        await repositories.set_raw_status(pool, [(raw_id, "processed", "command-writer")])
        await repositories.set_raw_status(pool, [(raw_id, "failed", "validator")])  # never backwards
        after = await hot_updates()
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
        assert await pool.fetchval("SELECT status FROM raw_payloads WHERE raw_id = $1::uuid", raw_id) == "processed"
    finally:
        await pool.close()
