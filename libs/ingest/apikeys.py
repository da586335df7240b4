"""Partner API keys: tenant-scoped, stored as a hash, a public id, optional expiry, last-used time."""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from ingest.crypto import hash_api_key, new_api_key
from ingest.db import repositories
from ingest.db.pool import create_pool
from ingest.settings import CommonSettings

_KEY = re.compile(r"^pk_(\d{1,18})_[A-Za-z0-9_-]{20,100}$")
# a hash no key has (sha256 output is 32 bytes): compared against when the lookup found nothing
_NO_HASH = b"\x00" * 32


@dataclass(frozen=True)
class ApiKey:
    key_id: int
    tenant_id: str
    expires_at: datetime | None
    rate_limit_per_s: int | None = None


async def issue_with(pool: asyncpg.Pool, tenant: str, *, expires_at: datetime | None, name: str, actor: str,
                     rate_limit_per_s: int | None = None, remote_addr: str | None = None
                     ) -> dict[str, Any] | None:
    async with pool.acquire() as conn, conn.transaction():
        if not await repositories.tenant_exists(conn, tenant):
            return None
        # insert with a placeholder hash to get the id, then store the hash of the real key
        key_id = await conn.fetchval("INSERT INTO api_keys (tenant_id, name, key_hash, expires_at, rate_limit_per_s) "
                                     "VALUES ($1, $2, gen_random_uuid()::text::bytea, $3, $4) RETURNING key_id",
                                     tenant, name, expires_at, rate_limit_per_s)
        key = new_api_key(key_id)
        await conn.execute("UPDATE api_keys SET key_hash = $2 WHERE key_id = $1", key_id, hash_api_key(key))
        await repositories.audit(conn, actor, "apikey.issue", tenant_id=tenant, target=str(key_id),
                                 remote_addr=remote_addr,
                                 details={"expiresAt": expires_at.isoformat() if expires_at else None,
                                          "name": name, "rateLimitPerS": rate_limit_per_s})
    return {"apiKeyId": key_id, "tenantId": tenant, "apiKey": key, "expiresAt": expires_at}


async def issue(settings: CommonSettings, tenant: str, *, expires_at: datetime | None, name: str = "",
                actor: str, rate_limit_per_s: int | None = None) -> dict[str, Any] | None:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        return await issue_with(pool, tenant, expires_at=expires_at, name=name, actor=actor,
                                rate_limit_per_s=rate_limit_per_s)
    finally:
        await pool.close()


async def revoke_with(pool: asyncpg.Pool, key_id: int, *, actor: str, remote_addr: str | None = None
                      ) -> str | None:
    """The revoked key's tenant, or None when no active key has that id."""
    async with pool.acquire() as conn, conn.transaction():
        tenant = await conn.fetchval("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL "
                                     "RETURNING tenant_id", key_id)
        if tenant is not None:
            await repositories.audit(conn, actor, "apikey.revoke", tenant_id=tenant, target=str(key_id),
                                     remote_addr=remote_addr)
    return str(tenant) if tenant is not None else None


async def revoke(settings: CommonSettings, key_id: int, *, actor: str) -> bool:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        return await revoke_with(pool, key_id, actor=actor) is not None
    finally:
        await pool.close()


async def list_with(pool: asyncpg.Pool, tenant: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT key_id, tenant_id, name, created_at, expires_at, revoked_at, last_used_at, "
                            "rate_limit_per_s FROM api_keys WHERE tenant_id = $1 ORDER BY key_id", tenant)
    return [{"apiKeyId": r["key_id"], "tenantId": r["tenant_id"], "name": r["name"], "createdAt": r["created_at"],
             "expiresAt": r["expires_at"], "revokedAt": r["revoked_at"], "lastUsedAt": r["last_used_at"],
             "rateLimitPerS": r["rate_limit_per_s"]} for r in rows]


async def list_keys(settings: CommonSettings, tenant: str) -> list[dict[str, Any]]:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        return await list_with(pool, tenant)
    finally:
        await pool.close()


def key_id_of(presented: str | None) -> int:
    """The public id inside ``pk_<id>_<secret>``, or -1 for anything that is not shaped like a key."""
    match = _KEY.match(presented or "")
    return int(match.group(1)) if match else -1


async def verify(pool: asyncpg.Pool, tenant: str, presented: str | None) -> ApiKey | None:
    """The key if valid *on this tenant*; None for missing, unknown, expired, revoked or foreign keys.

    One primary-key lookup by the key's public id whatever the reason (a malformed or missing key looks up
    id -1), then a constant-time compare of the hashes and of the tenant, and every check is evaluated
    (no early exit), so the timing does not tell the reasons apart.
    """
    digest = hash_api_key(presented or "")
    row = await pool.fetchrow("SELECT key_id, tenant_id, key_hash, expires_at, revoked_at, rate_limit_per_s "
                              "FROM api_keys WHERE key_id = $1", key_id_of(presented))
    stored = bytes(row["key_hash"]) if row is not None else _NO_HASH
    owner = str(row["tenant_id"]) if row is not None else ""
    hash_ok = hmac.compare_digest(stored, digest)
    tenant_ok = hmac.compare_digest(owner.encode(), tenant.encode())
    live = row is not None and row["revoked_at"] is None and (
        row["expires_at"] is None or row["expires_at"] > datetime.now(timezone.utc))
    if not (bool(presented) & hash_ok & tenant_ok & live):
        return None
    assert row is not None
    await pool.execute("UPDATE api_keys SET last_used_at = now() WHERE key_id = $1 AND "
                       "(last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", row["key_id"])
    return ApiKey(row["key_id"], row["tenant_id"], row["expires_at"], row["rate_limit_per_s"])
