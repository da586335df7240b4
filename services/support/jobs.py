"""Replay jobs in PostgreSQL: estimate → start → progress → cancel, throttled, resumed after a restart."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from ingest.db.pool import PG_OUTAGE
from ingest.errors import DependencyUnavailable
from ingest.observability import metrics
from ingest.rawlog.publisher import RawPublisher
from ingest.rawlog.s3 import S3Store
from ingest.replay import republish
from services.support.filters import PayloadFilter

log = logging.getLogger(__name__)
STATES = ("pending", "running", "done", "cancelled", "failed")
JOB_COLUMNS = ("job_id, created_by, created_at, kind, filter, state, rate_per_s, total, done, missing, cursor, "
               "started_at, finished_at, error")


def job_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    r = dict(row)
    filt = r["filter"] if isinstance(r["filter"], dict) else json.loads(r["filter"] or "{}")
    handled = r["done"] + r["missing"]
    return {"jobId": str(r["job_id"]), "createdBy": r["created_by"], "createdAt": r["created_at"],
            "kind": r["kind"], "filter": filt, "state": r["state"], "ratePerS": r["rate_per_s"],
            "total": r["total"], "replayed": r["done"], "missing": r["missing"], "handled": handled,
            "progress": round(handled / r["total"], 4) if r["total"] else 1.0,
            "startedAt": r["started_at"], "finishedAt": r["finished_at"], "error": r["error"]}


async def estimate(conn: asyncpg.Pool | asyncpg.Connection, filt: PayloadFilter) -> int:
    params: list[Any] = []
    return int(await conn.fetchval(f"SELECT count(*) FROM raw_payloads r WHERE {filt.where(params)}", *params))


async def create_job(conn: asyncpg.Pool | asyncpg.Connection, *, actor: str, rate_per_s: float, kind: str,
                     filt: PayloadFilter | None = None, raw_ids: Sequence[str] | None = None,
                     owner: str | None = None, lease_s: float = 10.0) -> dict[str, Any]:
    """Materialise the whole match set (one INSERT … SELECT) so progress is exact and resume is a cursor."""
    if rate_per_s <= 0:
        raise ValueError("ratePerS must be positive")
    job_id = str(uuid.uuid4())
    description = filt.to_json() if filt is not None else {"rawIds": len(raw_ids or [])}

    async def go(c: asyncpg.Connection) -> dict[str, Any]:
        await c.execute(
            "INSERT INTO replay_jobs (job_id, created_by, kind, filter, state, rate_per_s, lease_owner, lease_until, "
            "started_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, "
            "CASE WHEN $7::text IS NULL THEN NULL ELSE now() + make_interval(secs => $8) END, "
            "CASE WHEN $7::text IS NULL THEN NULL ELSE now() END)",
            job_id, actor, kind, json.dumps(description), "running" if owner else "pending", rate_per_s, owner,
            lease_s)
        if filt is not None:
            params: list[Any] = []
            where = filt.where(params)
            params.append(job_id)
            result = await c.execute(
                f"INSERT INTO replay_job_items (job_id, seq, raw_id) SELECT ${len(params)}::uuid, "
                f"row_number() OVER (ORDER BY r.received_at, r.raw_id), r.raw_id FROM raw_payloads r WHERE {where}",
                *params)
        else:
            result = await c.execute(
                "INSERT INTO replay_job_items (job_id, seq, raw_id) SELECT $1, n, id FROM "
                "unnest($2::uuid[]) WITH ORDINALITY AS u(id, n)", job_id, list(raw_ids or []))
        total = int(result.split()[-1])
        row = await c.fetchrow(f"UPDATE replay_jobs SET total = $2, state = CASE WHEN $2 = 0 THEN 'done' ELSE state "
                               f"END, finished_at = CASE WHEN $2 = 0 THEN now() END WHERE job_id = $1 "
                               f"RETURNING {JOB_COLUMNS}", job_id, total)
        await c.execute("INSERT INTO audit_log (actor, action, target, details) VALUES ($1, 'replay.job.start', $2, "
                        "$3::jsonb)", actor, job_id, json.dumps({"kind": kind, "filter": description,
                                                                 "total": total, "ratePerS": rate_per_s}))
        return job_json(row)

    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c, c.transaction():
            return await go(c)
    return await go(conn)


async def get_job(pool: asyncpg.Pool, job_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {JOB_COLUMNS} FROM replay_jobs WHERE job_id = $1::uuid", job_id)
    return job_json(row) if row else None


async def list_jobs(pool: asyncpg.Pool, limit: int = 50) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT {JOB_COLUMNS} FROM replay_jobs ORDER BY created_at DESC LIMIT $1", limit)
    return [job_json(r) for r in rows]


async def cancel_job(pool: asyncpg.Pool, job_id: str, actor: str) -> dict[str, Any] | None:
    async with pool.acquire() as c, c.transaction():
        row = await c.fetchrow(
            f"UPDATE replay_jobs SET state = 'cancelled', finished_at = now(), lease_owner = NULL, lease_until = NULL "
            f"WHERE job_id = $1::uuid AND state IN ('pending', 'running') RETURNING {JOB_COLUMNS}", job_id)
        if row:
            await c.execute("INSERT INTO audit_log (actor, action, target, details) VALUES ($1, 'replay.job.cancel', "
                            "$2, $3::jsonb)", actor, job_id, json.dumps({"handled": row["done"] + row["missing"]}))
    return job_json(row) if row else None


class JobRunner:
    """Claims jobs by lease (several replicas, or the CLI, never run one job twice at once) and runs them."""

    def __init__(self, pool: asyncpg.Pool, store: S3Store, publisher: RawPublisher, *, owner: str,
                 lease_s: float = 10.0, poll_s: float = 0.5, max_concurrent: int = 2, chunk_max: int = 500) -> None:
        self.pool, self.store, self.publisher = pool, store, publisher
        self.owner, self.lease_s, self.poll_s = owner, lease_s, poll_s
        self.max_concurrent, self.chunk_max = max_concurrent, chunk_max
        self._running: dict[str, asyncio.Task[None]] = {}

    async def claim(self) -> asyncpg.Record | None:
        return await self.pool.fetchrow(
            f"UPDATE replay_jobs SET state = 'running', lease_owner = $1, "
            f"lease_until = now() + make_interval(secs => $2), started_at = COALESCE(started_at, now()) "
            f"WHERE job_id = (SELECT job_id FROM replay_jobs WHERE state IN ('pending', 'running') "
            f"AND (lease_until IS NULL OR lease_until < now()) AND NOT (job_id = ANY($3::uuid[])) "
            f"ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {JOB_COLUMNS}",
            self.owner, self.lease_s, list(self._running))

    async def run(self, job_id: str, *, progress: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Replay the job's items after its cursor at its rate; returns the final state."""
        row = await self.pool.fetchrow("SELECT rate_per_s, cursor, created_by FROM replay_jobs WHERE job_id = $1",
                                       uuid.UUID(job_id))
        rate, cursor, actor = float(row["rate_per_s"]), int(row["cursor"]), row["created_by"]
        chunk = max(1, min(self.chunk_max, int(rate / 4) or 1))  # four sends a second: a smooth rate
        started, sent = time.monotonic(), 0
        while True:
            state = await self.pool.fetchval(
                "UPDATE replay_jobs SET lease_until = now() + make_interval(secs => $3) "
                "WHERE job_id = $1 AND lease_owner = $2 RETURNING state", uuid.UUID(job_id), self.owner, self.lease_s)
            if state != "running":
                return str(state or "lost")  # cancelled, or another owner took the lease
            items = await self.pool.fetch("SELECT seq, raw_id::text AS raw_id FROM replay_job_items "
                                          "WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                                          uuid.UUID(job_id), cursor, chunk)
            if not items:
                done = await self.pool.fetchrow(
                    f"UPDATE replay_jobs SET state = 'done', finished_at = now(), lease_owner = NULL, "
                    f"lease_until = NULL WHERE job_id = $1 AND state = 'running' RETURNING {JOB_COLUMNS}",
                    uuid.UUID(job_id))
                if done and progress:
                    progress(job_json(done))
                return "done" if done else "cancelled"
            result = await republish(self.pool, self.store, self.publisher, [i["raw_id"] for i in items],
                                     actor=actor, job_id=job_id)
            replay_of = {r["rawId"]: r["replayId"] for r in result["replays"]}
            cursor = items[-1]["seq"]
            async with self.pool.acquire() as c, c.transaction():
                await c.execute("UPDATE replay_job_items i SET replay_id = u.replay_id::uuid, replayed_at = now() "
                                "FROM unnest($2::text[], $3::text[]) AS u(raw_id, replay_id) "
                                "WHERE i.job_id = $1 AND i.raw_id = u.raw_id::uuid AND i.seq <= $4",
                                uuid.UUID(job_id), list(replay_of), list(replay_of.values()), cursor)
                row = await c.fetchrow(
                    f"UPDATE replay_jobs SET done = done + $2, missing = missing + $3, cursor = $4 "
                    f"WHERE job_id = $1 RETURNING {JOB_COLUMNS}", uuid.UUID(job_id), len(replay_of),
                    len(items) - len(replay_of), cursor)
            if progress:
                progress(job_json(row))
            sent += len(items)
            wait = started + sent / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _run_claimed(self, job_id: str) -> None:
        try:
            state = await self.run(job_id)
            log.info("replay job %s ended: %s", job_id, state)
        except (DependencyUnavailable, *PG_OUTAGE) as exc:
            log.warning("replay job %s paused (%s); its lease expires and it resumes", job_id, exc)
        except Exception as exc:  # noqa: BLE001 — one broken job must not stop the runner; it is marked failed
            log.exception("replay job %s failed", job_id)
            await self.pool.execute("UPDATE replay_jobs SET state = 'failed', error = $2, finished_at = now(), "
                                    "lease_owner = NULL, lease_until = NULL WHERE job_id = $1",
                                    uuid.UUID(job_id), f"{type(exc).__name__}: {exc}"[:1000])
        finally:
            self._running.pop(job_id, None)

    async def refresh_metrics(self) -> None:
        counts = {r["state"]: r["n"] for r in await self.pool.fetch(
            "SELECT state, count(*) AS n FROM replay_jobs GROUP BY state")}
        for state in STATES:
            metrics.REPLAY_JOBS.labels(state).set(counts.get(state, 0))

    async def serve(self) -> None:
        while True:
            try:
                while len(self._running) < self.max_concurrent:
                    job = await self.claim()
                    if job is None:
                        break
                    job_id = str(job["job_id"])
                    self._running[job_id] = asyncio.create_task(self._run_claimed(job_id), name=f"replay-{job_id}")
                await self.refresh_metrics()
            except PG_OUTAGE as exc:
                log.warning("replay runner: database unavailable: %s", exc)
            await asyncio.sleep(self.poll_s)

    async def stop(self) -> None:
        """Hand the leases back so another replica (or this one, restarted) resumes at once."""
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        try:
            await self.pool.execute("UPDATE replay_jobs SET lease_until = NULL, lease_owner = NULL "
                                    "WHERE lease_owner = $1 AND state = 'running'", self.owner)
        except PG_OUTAGE:
            pass  # the leases simply expire
