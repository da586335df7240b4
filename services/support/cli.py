"""What ``pos-ingest replay --class …`` and ``pos-ingest retention apply`` run: the support service's own code."""
from __future__ import annotations

import os
import socket
import sys
from typing import Any

from ingest.db.pool import create_pool
from ingest.rawlog.publisher import RawPublisher
from ingest.rawlog.s3 import S3Store
from services.support.filters import PayloadFilter
from services.support.jobs import JobRunner, create_job, get_job
from services.support.retention import apply_configured
from services.support.settings import SupportServiceSettings


async def replay_job(*, cls: str | None, provider: str | None, tenant: str | None, since: str | None,
                     until: str | None, unresolved: bool, rate: float | None, submit: bool) -> dict[str, Any]:
    """Create the job in PostgreSQL; run it here (holding its lease, progress on stderr) unless ``submit``.

    If this process dies, the lease expires and the support service resumes the job after its cursor.
    """
    settings = SupportServiceSettings()
    filt = PayloadFilter.from_query({"class": cls, "provider": provider, "tenant": tenant, "since": since,
                                     "until": until, "unresolved": "true" if unresolved and cls else ""})
    owner = None if submit else f"cli-{socket.gethostname()}-{os.getpid()}"
    pool = await create_pool(settings.dsn, max_size=2)
    try:
        job = await create_job(pool, actor="cli", rate_per_s=rate or settings.replay_rate_per_s, kind="cli",
                               filt=filt, owner=owner, lease_s=settings.replay_lease_s)
        print(f"replay job {job['jobId']}: {job['total']} payload(s) at {job['ratePerS']}/s", file=sys.stderr)
        if owner is None or job["state"] == "done":
            return job
        store = S3Store(settings)
        publisher = RawPublisher(settings, client_id="pos-ingest-cli-replay")
        try:
            runner = JobRunner(pool, store, publisher, owner=owner, lease_s=settings.replay_lease_s)
            await runner.run(job["jobId"], progress=lambda j: print(
                f"  {j['handled']}/{j['total']} replayed={j['replayed']} missing={j['missing']} {j['state']}",
                file=sys.stderr))
        finally:
            publisher.close()
            store.close()
        return await get_job(pool, job["jobId"]) or job
    finally:
        await pool.close()


async def retention_apply(months: int | None) -> dict[str, Any]:
    settings = SupportServiceSettings()
    pool = await create_pool(settings.dsn, max_size=1)
    store = S3Store(settings)
    try:
        return await apply_configured(pool, store, settings, months=months)
    finally:
        await pool.close()
        store.close()
