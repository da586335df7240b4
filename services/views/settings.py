"""Views settings: Redis, the read API port and the consumer's batching."""
from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from ingest.settings import ViewsSettings


class ViewsServiceSettings(ViewsSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    #: empty → ``pos-ingest:views:{TOPIC_PREFIX}`` so test stacks sharing one Redis never collide
    views_key_prefix: str = ""
    #: how many recent command ids each view entry remembers (re-deliveries are caught by offset too)
    views_recent_commands: int = 16
    #: how many view entries the consumer keeps as it last wrote or read them, to skip reading them again
    #: (~1 KB each; every one is compared with Redis in the batch's write; 0: read every slot every batch)
    views_cache_slots: int = 10_000
    #: how often an idle consumer looks for a rebuild started elsewhere
    views_epoch_check_s: float = 1.0
    views_lag_interval_s: float = 5.0

    @property
    def key_base(self) -> str:
        return key_base(self.views_key_prefix, self.topic_prefix)


def key_base(views_key_prefix: str, topic_prefix: str) -> str:
    """The views' Redis key base, for the views and for other readers of them (the receiver)."""
    return views_key_prefix or f"pos-ingest:views:{topic_prefix}"
