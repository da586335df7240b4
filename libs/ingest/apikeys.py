"""Partner API keys: tenant-scoped, stored as a hash, a public id, optional expiry, last-used time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from ingest.crypto import hash_api_key, new_api_key
from ingest.db import repositories
from ingest.db.pool import create_pool
from ingest.settings import CommonSettings


@dataclass(frozen=True)
class ApiKey:
    key_id: int
    tenant_id: str
    expires_at: datetime | None


async def issue_with(pool: asyncpg.Pool, tenant: str, *, expires_at: datetime | None, name: str, actor: str
                     ) -> dict[str, Any] | None:
    async with pool.acquire() as conn, conn.transaction():
        if not await repositories.tenant_exists(conn, tenant):
            return None
        # insert with a placeholder hash to get the id, then store the hash of the real key
        key_id = await conn.fetchval("INSERT INTO api_keys (tenant_id, name, key_hash, expires_at) "
                                     "VALUES ($1, $2, gen_random_uuid()::text::bytea, $3) RETURNING key_id",
                                     tenant, name, expires_at)
        key = new_api_key(key_id)
        await conn.execute("UPDATE api_keys SET key_hash = $2 WHERE key_id = $1", key_id, hash_api_key(key))
        await repositories.audit(conn, actor, "apikey.issue", tenant_id=tenant, target=str(key_id),
                                 details={"expiresAt": expires_at.isoformat() if expires_at else None})
    return {"apiKeyId": key_id, "tenantId": tenant, "apiKey": key, "expiresAt": expires_at}


async def issue(settings: CommonSettings, tenant: str, *, expires_at: datetime | None, name: str = "",
                actor: str) -> dict[str, Any] | None:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        return await issue_with(pool, tenant, expires_at=expires_at, name=name, actor=actor)
    finally:
        await pool.close()


async def revoke_with(pool: asyncpg.Pool, key_id: int, *, actor: str) -> bool:
    tenant = await pool.fetchval("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL "
                                 "RETURNING tenant_id", key_id)
    if tenant is not None:
        await repositories.audit(pool, actor, "apikey.revoke", tenant_id=tenant, target=str(key_id))
    return tenant is not None


async def revoke(settings: CommonSettings, key_id: int, *, actor: str) -> bool:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        return await revoke_with(pool, key_id, actor=actor)
    finally:
        await pool.close()


async def list_keys(settings: CommonSettings, tenant: str) -> list[dict[str, Any]]:
    pool = await create_pool(settings.dsn, max_size=1)
    try:
        rows = await pool.fetch("SELECT key_id, tenant_id, name, created_at, expires_at, revoked_at, last_used_at "
                                "FROM api_keys WHERE tenant_id = $1 ORDER BY key_id", tenant)
    finally:
        await pool.close()
    return [{"apiKeyId": r["key_id"], "tenantId": r["tenant_id"], "name": r["name"], "createdAt": r["created_at"],
             "expiresAt": r["expires_at"], "revokedAt": r["revoked_at"], "lastUsedAt": r["last_used_at"]}
            for r in rows]


async def verify(pool: asyncpg.Pool, tenant: str, presented: str | None) -> ApiKey | None:
    """The key if valid *on this tenant*; None for missing, unknown, expired, revoked or foreign keys.

    One indexed lookup by hash whatever the reason, so the timing does not tell them apart.
    """
    digest = hash_api_key(presented or "")
    row = await pool.fetchrow("SELECT key_id, tenant_id, expires_at, revoked_at FROM api_keys WHERE key_hash = $1",
                              digest)
    if not presented or row is None or row["revoked_at"] is not None or row["tenant_id"] != tenant:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= datetime.now(timezone.utc):
        return None
    await pool.execute("UPDATE api_keys SET last_used_at = now() WHERE key_id = $1 AND "
                       "(last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", row["key_id"])
    return ApiKey(row["key_id"], row["tenant_id"], row["expires_at"])
