"""PostgreSQL repositories: claims, mappings, the ledger tables."""
from __future__ import annotations

import uuid

import pytest

from ingest.db import repositories
from ingest.db.pool import create_pool

pytestmark = pytest.mark.integration


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
