"""Typed, frozen settings read from the environment (contract §1). Only entrypoints build them."""
from __future__ import annotations

import os

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every process needs. Printing it is safe: secrets are ``SecretStr``."""

    # `pos-ingest up` writes the embedded servers' addresses to .run/stack.env so that every other command
    # run from the same directory finds them; real environment variables always win.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="",
                                      env_file=os.environ.get("POS_INGEST_STACK_ENV", ".run/stack.env"))

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/pos_ingest")
    s3_endpoint_url: str | None = None
    s3_bucket: str = "pos-ingest-raw"
    aws_access_key_id: SecretStr = SecretStr("testing")
    aws_secret_access_key: SecretStr = SecretStr("testing")
    aws_region: str = "us-east-1"
    redis_url: str = "redis://127.0.0.1:6379/0"
    tenant_base_domain: str = "localhost"
    admin_token: SecretStr | None = None
    secrets_key: SecretStr | None = None  # base64 of 32 bytes: encrypts source secrets at rest
    log_level: str = "INFO"
    topic_prefix: str = ""  # tests isolate themselves with a unique prefix
    inline_body_max_bytes: int = 256 * 1024
    # how long an Idempotency-Key answers with its first response (receiver), then retention deletes it (support)
    idempotency_retention_h: int = 24

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def dsn(self) -> str:
        return self.database_url.get_secret_value()


class ReceiverSettings(CommonSettings):
    receiver_port: int = 8080
    receiver_host: str = "0.0.0.0"
    max_body_bytes: int = 10 * 1024 * 1024
    max_import_bytes: int = 2 * 1024 * 1024 * 1024
    # group-commit window: at 1,000 webhooks/s ~30 payloads share a PUT (docs/performance.md)
    rawlog_flush_ms: float = 30.0
    rawlog_max_batch: int = 512
    rawlog_max_batch_bytes: int = 8 * 1024 * 1024
    sweeper_interval_s: float = 5.0
    sweeper_grace_s: float = 10.0
    retry_after_s: int = 5
    signature_tolerance_s: int = 300
    trusted_proxies: str = ""  # comma-separated CIDRs whose X-Forwarded-For is honoured
    max_json_depth: int = 64  # deeper JSON bodies are refused (400) before they are stored
    partner_rate_limit_per_s: int = 20  # per API key, unless the key has its own limit
    views_key_prefix: str = ""  # the views' Redis keys (services/views/settings.py): store-status queries read them
    store_status_timeout_s: float = 1.0  # a store-status query waits this long for Redis, then answers without it


class StageSettings(CommonSettings):
    metrics_port: int = 0
    stage_instance_id: str = ""
    batch_size: int = 500
    #: a batch stops growing once its values hold this many bytes: a bulk feed's Validated chunks carry up to 500
    #: commands each, and 500 of them decoded at once took the command writer past 350 MB (docs/performance.md)
    batch_max_bytes: int = 8 * 1024 * 1024
    #: what a reader's client may hold fetched ahead of the stage (librdkafka ``queued.max.messages.kbytes``, 64 MB
    #: by default): 16 MB is still ~3,000 batches of webhooks or ~100 feed chunks ahead, and a process's peak RSS
    #: while it drains a backlog is this plus its batch
    fetch_queue_max_kb: int = 16 * 1024
    poll_timeout_s: float = 0.05
    #: a reader's long poll: the broker answers as soon as data arrives, or after this (docs/performance.md)
    fetch_wait_max_ms: int = 100
    session_timeout_ms: int = 6000
    transaction_timeout_ms: int = 15000
    retry_backoff_max_s: float = 10.0
    #: a Kafka transaction call that has not returned after this long is wedged: the stage exits to restart
    kafka_stall_timeout_s: float = 180.0
    dedupe_ttl_days: int = 7


class SupportSettings(CommonSettings):
    support_port: int = 8081
    support_host: str = "0.0.0.0"


class ViewsSettings(StageSettings):
    views_port: int = 8082
    views_host: str = "0.0.0.0"
