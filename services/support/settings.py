"""Settings of the support service (environment only)."""
from __future__ import annotations

from ingest.settings import SupportSettings


class SupportServiceSettings(SupportSettings):
    #: replay throttle: payloads per second per job, so live traffic keeps its latency
    replay_rate_per_s: float = 200.0
    replay_max_concurrent_jobs: int = 2
    replay_lease_s: float = 10.0
    replay_poll_s: float = 0.5
    #: how often unresolved mapping failures are checked against new mappings (CLI imports included)
    redrive_interval_s: float = 15.0
    #: raw payloads and their metadata (failures, outcomes, finished replay jobs) are kept this many months
    retention_months: int = 13
    retention_future_months: int = 2
    retention_interval_s: float = 3600.0
    retention_apply_s3_lifecycle: bool = True
    user_cache_s: float = 10.0
