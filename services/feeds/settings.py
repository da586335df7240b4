"""Feeds stage settings (FEED_* environment variables)."""
from __future__ import annotations

from ingest.settings import StageSettings


class FeedsSettings(StageSettings):
    metrics_port: int = 9108
    tenant_cache_s: float = 5.0
    #: records per batch: one mapping query, one Kafka transaction and one PG checkpoint each
    feed_batch_rows: int = 2000
    #: commands per Transformed record (keeps each record far below the broker's message size limit)
    feed_chunk_commands: int = 500
    feed_chunk_bytes: int = 512 * 1024
    #: how long an import stays leased to a worker without a checkpoint before another may resume it
    feed_lease_s: float = 60.0
    #: how often an idle worker looks for imports registered elsewhere (another replica, a restart)
    feed_poll_s: float = 2.0
    #: bytes per read from object storage
    feed_read_bytes: int = 1 << 20
