"""Support users: bearer tokens stored as sha256, the ADMIN_TOKEN bootstrap, and the request check."""
from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from ingest.crypto import hash_api_key, new_token

COOKIE = "support_token"


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    role: str


async def bootstrap_admin(pool: asyncpg.Pool, token: str) -> None:
    """The ADMIN_TOKEN always works as the user ``admin`` (rotating the variable rotates the token)."""
    await pool.execute(
        "INSERT INTO support_users (name, token_hash, role) VALUES ('admin', $1, 'admin') "
        "ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, revoked_at = NULL, role = 'admin'",
        hash_api_key(token))


async def create_user(pool: asyncpg.Pool, name: str, role: str) -> str:
    token = f"sup_{new_token()}"
    await pool.execute("INSERT INTO support_users (name, token_hash, role) VALUES ($1, $2, $3)",
                       name, hash_api_key(token), role)
    return token


class Authenticator:
    """Looks tokens up by hash, with a short cache so a page load is not one query per asset."""

    def __init__(self, pool: asyncpg.Pool, cache_s: float) -> None:
        self.pool, self.cache_s = pool, cache_s
        self._cache: dict[bytes, tuple[float, User | None]] = {}

    async def user(self, token: str | None) -> User | None:
        if not token:
            return None
        digest = hash_api_key(token)
        hit = self._cache.get(digest)
        if hit and time.monotonic() - hit[0] < self.cache_s:
            return hit[1]
        row = await self.pool.fetchrow(
            "UPDATE support_users SET last_seen_at = now() WHERE token_hash = $1 AND revoked_at IS NULL "
            "RETURNING user_id, name, role", digest)
        user = User(row["user_id"], row["name"], row["role"]) if row else None
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic(), user)
        return user
