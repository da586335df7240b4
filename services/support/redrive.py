"""Re-drive payloads whose only problem was a mapping that now exists: resolve their failures, replay them."""
from __future__ import annotations

from typing import Any

import asyncpg

from ingest.db import repositories
from services.support.jobs import create_job
from services.support.trail import parse_missing


async def redrive_mapped(pool: asyncpg.Pool, *, actor: str, rate_per_s: float, tenant: str | None = None,
                         provider: str | None = None) -> dict[str, Any]:
    """Unresolved mapping failures whose missing keys are all mapped now → one replay job, failures resolved.

    The job and the resolutions commit together, so a crash never leaves a resolved failure un-replayed.
    Payloads that already went through (a later attempt processed them) are resolved without a replay.
    """
    groups = await pool.fetch(
        "SELECT tenant_id, provider, details->>'missing' AS missing FROM failures "
        "WHERE class = 'mapping' AND resolved_at IS NULL AND raw_id IS NOT NULL "
        "AND ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR provider = $2) "
        "GROUP BY 1, 2, 3", tenant, provider)
    keys = {(g["tenant_id"], g["provider"], e, x) for g in groups for e, x in parse_missing(g["missing"])}
    found = await repositories.load_mappings(pool, sorted(keys)) if keys else {}
    fixed = [(g["tenant_id"], g["provider"], g["missing"]) for g in groups
             if parse_missing(g["missing"]) and all((g["tenant_id"], g["provider"], e, x) in found
                                                    for e, x in parse_missing(g["missing"]))]
    if not fixed:
        return {"resolved": 0, "job": None}
    t, p, m = (list(c) for c in zip(*fixed))
    async with pool.acquire() as c, c.transaction():
        rows = await c.fetch(
            "UPDATE failures f SET resolved_at = now(), resolution = 'auto-redriven', "
            "resolution_note = 'mapping added: ' || (f.details->>'missing') "
            "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(t, p, m) "
            "WHERE f.class = 'mapping' AND f.resolved_at IS NULL AND f.tenant_id = u.t AND f.provider = u.p "
            "AND f.details->>'missing' = u.m RETURNING f.failure_id::text, f.raw_id::text, f.tenant_id, "
            "(SELECT r.status FROM raw_payloads r WHERE r.raw_id = f.raw_id LIMIT 1) AS status", t, p, m)
        raw_ids = sorted({r["raw_id"] for r in rows if r["status"] != "processed"})
        job = await create_job(c, actor=actor, rate_per_s=rate_per_s, kind="auto-redrive",
                               raw_ids=raw_ids) if raw_ids else None
        await c.executemany(
            "INSERT INTO audit_log (actor, action, tenant_id, target, details) VALUES ($1, 'failure.resolve', $2, "
            "$3, $4::jsonb)",
            [(actor, r["tenant_id"], r["raw_id"], _details(r["failure_id"], job)) for r in rows])
    return {"resolved": len(rows), "rawIds": raw_ids, "job": job}


def _details(failure_id: str, job: dict[str, Any] | None) -> str:
    import json

    return json.dumps({"failureId": failure_id, "resolution": "auto-redriven",
                       "jobId": job["jobId"] if job else None})
