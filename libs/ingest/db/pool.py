"""asyncpg pools, database creation and versioned SQL migrations."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ingest.errors import DependencyUnavailable

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"

#: what asyncpg/OS raise when PostgreSQL is down, restarting or unreachable
PG_OUTAGE = (OSError, asyncio.TimeoutError, asyncpg.exceptions.CannotConnectNowError,
             asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError,
             asyncpg.exceptions.TooManyConnectionsError, asyncpg.exceptions.AdminShutdownError,
             asyncpg.exceptions.CrashShutdownError, asyncpg.exceptions.ConnectionFailureError)


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """Nothing to undo on release: no code here leaves session state behind (no LISTEN, SET or cursors; the
    sweeper's advisory lock is released where it is taken), so asyncpg's default reset query — one more round
    trip after every pooled statement — is skipped. asyncpg still rolls back a transaction left open."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=30,
                                     timeout=10, reset=_no_session_reset)


async def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` if the server does not have it."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
            log.info("created database %s", name)
    finally:
        await conn.close()


async def migrate(dsn: str) -> list[str]:
    """Apply every ``migrations/NNNN_*.sql`` not applied yet, each in its own transaction."""
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn, timeout=10)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock(74210815)")
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                           "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.stem in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
            applied.append(path.stem)
            log.info("applied migration %s", path.stem)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(74210815)")
        await conn.close()
    return applied


def outage(exc: BaseException) -> DependencyUnavailable:
    return DependencyUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {str(exc)[:200]}")
