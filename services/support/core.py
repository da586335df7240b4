"""The support service's resources and the actions the API and the pages share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from ingest.db import repositories
from ingest.rawlog.publisher import RawPublisher
from ingest.rawlog.s3 import S3Store
from services.support.auth import Authenticator
from services.support.jobs import JobRunner
from services.support.queries import check_mapping_target, validate_mappings
from services.support.redrive import redrive_mapped
from services.support.settings import SupportServiceSettings


@dataclass
class Support:
    settings: SupportServiceSettings
    pool: asyncpg.Pool
    store: S3Store
    publisher: RawPublisher
    runner: JobRunner
    auth: Authenticator

    async def add_mappings(self, tenant: str, provider: str, items: list[dict[str, Any]], *, actor: str,
                           remote: str | None, source: str = "console") -> dict[str, Any]:
        """Upsert, audit, then re-drive every payload that failed only for mappings that now exist."""
        rows = [(tenant, provider, e, x, c) for e, x, c in validate_mappings(items)]
        refused = await check_mapping_target(self.pool, tenant, provider)
        if refused:
            raise ValueError(refused)
        count = await repositories.upsert_mappings(self.pool, rows)
        await repositories.audit(self.pool, actor, "mappings.upsert", tenant_id=tenant, target=provider,
                                 remote_addr=remote, details={"rows": len(rows), "source": source,
                                                              "keys": [f"{r[2]}:{r[3]}" for r in rows[:100]]})
        redrive = await redrive_mapped(self.pool, actor=actor, rate_per_s=self.settings.replay_rate_per_s,
                                       tenant=tenant, provider=provider)
        return {"upserted": count, "redrive": redrive}
