"""Repositories over PostgreSQL: one query per batch wherever a stage calls them."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ingest.canonical.mapping import MappingKey, TenantSettings
from ingest.crypto import SecretBox


# --- tenants and sources ----------------------------------------------------------------------
#: a tenant is the first DNS label of the Host header (the tenants table checks the same)
TENANT_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


async def add_tenant(conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, *, auto_create_items: bool = False,
                     timezone: str = "UTC", default_currency: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO tenants (tenant_id, auto_create_items, timezone, default_currency) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tenant_id) DO UPDATE SET auto_create_items = EXCLUDED.auto_create_items, "
        "timezone = EXCLUDED.timezone, default_currency = COALESCE(EXCLUDED.default_currency, "
        "tenants.default_currency)",
        tenant_id, auto_create_items, timezone, default_currency)


async def tenant_settings(conn: asyncpg.Connection | asyncpg.Pool, tenant_ids: Iterable[str]
                          ) -> dict[str, TenantSettings]:
    rows = await conn.fetch("SELECT * FROM tenants WHERE tenant_id = ANY($1::text[])", list(set(tenant_ids)))
    return {r["tenant_id"]: TenantSettings(r["tenant_id"], r["auto_create_items"], r["timezone"],
                                           r["default_currency"], r["default_category"]) for r in rows}


async def source_options(conn: asyncpg.Connection | asyncpg.Pool, pairs: Iterable[tuple[str, str]]
                         ) -> dict[tuple[str, str], dict[str, Any]]:
    """(tenant, provider) → the source's options; a pair without a source is absent."""
    tenants, providers = (list(c) for c in zip(*set(pairs))) if pairs else ([], [])
    rows = await conn.fetch(
        "SELECT s.tenant_id, s.provider, s.options FROM sources s JOIN unnest($1::text[], $2::text[]) AS w(t, p) "
        "ON s.tenant_id = w.t AND s.provider = w.p", tenants, providers)
    return {(r["tenant_id"], r["provider"]): _options(r) for r in rows}


async def tenant_exists(conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id))


async def add_source_secret(conn: asyncpg.Pool, box: SecretBox, tenant_id: str, provider: str, secret: str, *,
                            options: dict[str, Any] | None = None, keep_previous: int = 1) -> int:
    """Add a secret to the source (creating it); older secrets beyond ``keep_previous`` are revoked."""
    async with conn.acquire() as c, c.transaction():
        source_id = await c.fetchval(
            "INSERT INTO sources (tenant_id, provider, options) VALUES ($1, $2, $3::jsonb) "
            "ON CONFLICT (tenant_id, provider) DO UPDATE SET options = sources.options || EXCLUDED.options "
            "RETURNING source_id", tenant_id, provider, json.dumps(options or {}))
        await c.execute("INSERT INTO source_secrets (source_id, secret_enc) VALUES ($1, $2)",
                        source_id, box.seal(secret))
        await c.execute(
            "UPDATE source_secrets SET revoked_at = now() WHERE source_id = $1 AND revoked_at IS NULL AND "
            "secret_id NOT IN (SELECT secret_id FROM source_secrets WHERE source_id = $1 AND revoked_at IS NULL "
            "ORDER BY secret_id DESC LIMIT $2)", source_id, keep_previous + 1)
        return int(source_id)


async def configure_source(conn: asyncpg.Pool, tenant_id: str, provider: str, *,
                           ip_allowlist: list[str] | None = None, rate_limit_per_s: int | None = None,
                           options: dict[str, Any] | None = None) -> int:
    """Create the source if needed and set what is given: the CIDR allowlist (an empty list clears it), the
    rate limit (0 clears it), options merged into the existing ones."""
    return int(await conn.fetchval(
        "INSERT INTO sources (tenant_id, provider, options, ip_allowlist, rate_limit_per_s) "
        "VALUES ($1, $2, $3::jsonb, COALESCE($4::cidr[], '{}'), NULLIF($5, 0)) "
        "ON CONFLICT (tenant_id, provider) DO UPDATE SET options = sources.options || EXCLUDED.options, "
        "ip_allowlist = COALESCE($4::cidr[], sources.ip_allowlist), "
        "rate_limit_per_s = CASE WHEN $5::int IS NULL THEN sources.rate_limit_per_s ELSE NULLIF($5, 0) END "
        "RETURNING source_id", tenant_id, provider, json.dumps(options or {}), ip_allowlist, rate_limit_per_s))


def _options(row: asyncpg.Record) -> dict[str, Any]:
    """A ``sources`` row's options (jsonb arrives as text unless a codec is registered)."""
    return row["options"] if isinstance(row["options"], dict) else json.loads(row["options"] or "{}")


@dataclass(frozen=True)
class Source:
    source_id: int
    tenant_id: str
    provider: str
    secrets: list[str]
    options: dict[str, Any]
    ip_allowlist: list[Any]
    rate_limit_per_s: int | None


async def load_source(conn: asyncpg.Pool, box: SecretBox, tenant_id: str, provider: str) -> Source | None:
    row = await conn.fetchrow("SELECT * FROM sources WHERE tenant_id = $1 AND provider = $2", tenant_id, provider)
    if row is None:
        return None
    sealed = await conn.fetch("SELECT secret_enc FROM source_secrets WHERE source_id = $1 AND revoked_at IS NULL "
                              "ORDER BY secret_id DESC", row["source_id"])
    options = _options(row)
    return Source(row["source_id"], tenant_id, provider, [box.open(s["secret_enc"]) for s in sealed], options,
                  list(row["ip_allowlist"] or []), row["rate_limit_per_s"])


# --- mappings ---------------------------------------------------------------------------------
async def load_mappings(conn: asyncpg.Connection | asyncpg.Pool,
                        wanted: Sequence[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], str]:
    """One query for a whole batch: (tenant, provider, entity, external_id) → canonical id."""
    if not wanted:
        return {}
    cols = list(zip(*wanted))
    rows = await conn.fetch(
        "SELECT m.tenant_id, m.provider, m.entity, m.external_id, m.canonical_id FROM mappings m "
        "JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS w(t, p, e, x) "
        "ON m.tenant_id = w.t AND m.provider = w.p AND m.entity = w.e AND m.external_id = w.x",
        list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]))
    return {(r["tenant_id"], r["provider"], r["entity"], r["external_id"]): r["canonical_id"] for r in rows}


async def upsert_mappings(conn: asyncpg.Connection | asyncpg.Pool,
                          rows: Sequence[tuple[str, str, str, str, str]], *, auto_created: bool = False,
                          overwrite: bool = True) -> int:
    """(tenant, provider, entity, external_id, canonical_id) rows in one statement."""
    if not rows:
        return 0
    cols = list(zip(*rows))
    conflict = ("DO UPDATE SET canonical_id = EXCLUDED.canonical_id, auto_created = EXCLUDED.auto_created, "
                "updated_at = now()") if overwrite else "DO NOTHING"
    result = await conn.execute(
        "INSERT INTO mappings (tenant_id, provider, entity, external_id, canonical_id, auto_created) "
        "SELECT t, p, e, x, c, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
        f"AS r(t, p, e, x, c) ON CONFLICT (tenant_id, provider, entity, external_id) {conflict}",
        list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]), auto_created)
    return int(result.split()[-1])


# --- claims: dedupe keys and written command ids --------------------------------------------
async def claim(conn: asyncpg.Connection | asyncpg.Pool, table: str, key_column: str,
                items: Sequence[tuple[str, str, str]], *, reclaimed: set[str] | None = None
                ) -> dict[str, tuple[bool, str]]:
    """Claim keys for (key, raw_id, origin) in one statement.

    Returns key → (claimed_now_or_by_same_origin, raw_id of the first claimant). A key already claimed by
    the same origin (topic/partition/offset) counts as ours: that is a stage reprocessing an input whose
    transaction aborted, and its output must be produced again. Those keys are added to ``reclaimed``.

    A key listed more than once is claimed for, and answered for, its first occurrence: a caller whose batch
    may hold one key twice must treat the later occurrences itself (they would otherwise read "ours" too).
    """
    if not items:
        return {}
    keys, raw_ids, origins = (list(c) for c in zip(*items))
    cast = "uuid" if key_column == "command_id" else "text"
    rows = await conn.fetch(
        f"WITH input AS (SELECT * FROM unnest($1::{cast}[], $2::uuid[], $3::text[]) WITH ORDINALITY "
        f"AS i(k, raw_id, origin, n)), "
        f"ins AS (INSERT INTO {table} ({key_column}, raw_id, origin) SELECT DISTINCT ON (k) k, raw_id, origin "
        f"FROM input ORDER BY k, n ON CONFLICT ({key_column}) DO NOTHING RETURNING {key_column} AS k) "
        f"SELECT i.k::text AS k, (ins.k IS NOT NULL) AS inserted, t.raw_id::text AS first_raw, t.origin AS first_origin "
        f"FROM input i LEFT JOIN ins ON ins.k = i.k LEFT JOIN {table} t ON t.{key_column} = i.k",
        keys, raw_ids, origins)
    out: dict[str, tuple[bool, str]] = {}
    by_key: dict[str, tuple[str, str]] = {}
    for k, r, o in items:
        by_key.setdefault(k, (r, o))
    for r in rows:
        raw_id, origin = by_key[r["k"]]
        if r["inserted"]:
            out[r["k"]] = (True, raw_id)
        else:
            out[r["k"]] = (r["first_origin"] == origin, r["first_raw"] or raw_id)
            if reclaimed is not None and r["first_origin"] == origin:
                reclaimed.add(r["k"])
    return out


async def purge_dedupe_keys(conn: asyncpg.Pool, older_than_days: int) -> int:
    result = await conn.execute("DELETE FROM dedupe_keys WHERE created_at < now() - make_interval(days => $1)",
                                older_than_days)
    return int(result.split()[-1])


# --- ledger: failures and outcomes ------------------------------------------------------------
FAILURE_COLUMNS = ("failure_id", "class", "stage", "reason_code", "message", "raw_id", "tenant_id", "provider",
                   "occurred_at", "attempt", "origin_topic", "origin_partition", "origin_offset", "replay_id",
                   "command_id", "exception", "details")


async def insert_failures(conn: asyncpg.Connection | asyncpg.Pool, records: Sequence[dict[str, Any]]) -> None:
    if not records:
        return
    await conn.executemany(
        f"INSERT INTO failures ({', '.join(FAILURE_COLUMNS)}) VALUES "
        "($1::uuid, $2, $3, $4, $5, $6::uuid, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb) "
        "ON CONFLICT (failure_id) DO NOTHING",
        [(r["failureId"], r["class"], r["stage"], r["reasonCode"], r["message"], r.get("rawId"), r.get("tenantId"),
          r.get("provider"), r["occurredAt"], r.get("attempt", 0), r.get("originTopic"), r.get("originPartition"),
          r.get("originOffset"), r.get("replayId"), r.get("commandId"), r.get("exception"),
          json.dumps(r.get("details") or {})) for r in records])


async def insert_outcomes(conn: asyncpg.Connection | asyncpg.Pool, records: Sequence[dict[str, Any]]) -> None:
    """One statement for the batch: ``executemany`` runs the INSERT once per row (20 µs of PostgreSQL per
    webhook in a drain, the largest per-row statement left; docs/performance.md)."""
    if not records:
        return
    rows = [{"raw_id": r["rawId"], "replay_key": r.get("replayId") or "", "stage": r["stage"],
             "outcome": r["outcome"], "event_type": r.get("eventType") or "",
             "command_ids": r.get("commandIds") or [], "command_types": r.get("commandTypes") or [],
             "topics": r.get("topics") or [], "duplicate_command_ids": r.get("duplicateCommandIds") or [],
             "reason": r.get("reason") or "", "occurred_at": r["occurredAt"]} for r in records]
    await conn.execute(
        "INSERT INTO outcomes (raw_id, replay_key, stage, outcome, event_type, command_ids, command_types, topics, "
        "duplicate_command_ids, reason, occurred_at) "
        "SELECT raw_id, replay_key, stage, outcome, event_type, command_ids, command_types, topics, "
        "duplicate_command_ids, reason, occurred_at FROM jsonb_to_recordset($1::jsonb) AS x(raw_id uuid, "
        "replay_key text, stage text, outcome text, event_type text, command_ids text[], command_types text[], "
        "topics text[], duplicate_command_ids text[], reason text, occurred_at timestamptz) "
        "ON CONFLICT (raw_id, replay_key) DO NOTHING", orjson.dumps(rows).decode())


async def set_raw_status(conn: asyncpg.Connection | asyncpg.Pool, updates: Sequence[tuple[str, str, str]]) -> None:
    """(raw_id, status, stage) — status moves only forward: a later failure never hides written commands."""
    if not updates:
        return
    raw_ids, statuses, stages = (list(c) for c in zip(*updates))
    await conn.execute(
        "UPDATE raw_payloads r SET status = u.status, status_stage = u.stage "
        "FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(raw_id, status, stage) "
        "WHERE r.raw_id = u.raw_id AND NOT (r.status = 'processed' AND u.status <> 'processed')",
        raw_ids, statuses, stages)


@dataclass(frozen=True)
class RawRow:
    raw_id: str
    received_at: datetime
    tenant_id: str
    provider: str
    kind: str
    family: str
    route: str
    segment_key: str
    segment_offset: int
    segment_length: int
    sha256: str
    content_type: str
    headers: dict[str, str]
    size: int
    status: str
    published_at: datetime | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> RawRow:
        headers = r["headers"] if isinstance(r["headers"], dict) else json.loads(r["headers"] or "{}")
        return cls(str(r["raw_id"]), r["received_at"], r["tenant_id"], r["provider"], r["kind"], r["family"],
                   r["route"], r["segment_key"], r["segment_offset"], r["segment_length"], r["sha256"],
                   r["content_type"], headers, r["size"], r["status"], r["published_at"])


async def load_raw(conn: asyncpg.Connection | asyncpg.Pool, raw_ids: Sequence[str]) -> list[RawRow]:
    rows = await conn.fetch("SELECT * FROM raw_payloads WHERE raw_id = ANY($1::uuid[]) ORDER BY received_at",
                            list(raw_ids))
    return [RawRow.from_record(r) for r in rows]


async def audit(conn: asyncpg.Connection | asyncpg.Pool, actor: str, action: str, *, tenant_id: str | None = None,
                target: str | None = None, remote_addr: str | None = None,
                details: dict[str, Any] | None = None) -> None:
    await conn.execute("INSERT INTO audit_log (actor, action, tenant_id, target, remote_addr, details) "
                       "VALUES ($1, $2, $3, $4, $5, $6::jsonb)", actor, action, tenant_id, target, remote_addr,
                       json.dumps(details or {}))
