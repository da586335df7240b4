"""Poller settings."""
from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from ingest.settings import ReceiverSettings


class PollerSettings(ReceiverSettings):
    """Inherits the raw-log writer's knobs from the receiver: the poller appends to the same raw log."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")
    metrics_port: int = 9107
    poller_tick_s: float = 1.0  # how often due sources are claimed
    poller_concurrency: int = 4  # sources pulled at once by one instance
    poller_lease_s: int = 300  # a claimed source is not claimed again for this long (a crashed run expires)
    poller_http_timeout_s: float = 30.0
    poller_max_attempts: int = 5  # per request: 429, 5xx, timeouts and connection errors
    poller_backoff_base_s: float = 0.5
    poller_backoff_max_s: float = 60.0  # also caps a Retry-After
    poller_failure_backoff_max_s: float = 3600.0  # a source that keeps failing is retried at most this late
    poller_token_margin_s: int = 120  # refresh an OAuth2 token this long before it expires
    poller_max_pages: int = 1000  # per run, a guard against a server that never says "last page"
    poller_notifications: bool = True  # consume integration.raw for menu.updated notifications
    # Deliverect async menus: report ONLINE/FAILED to the push's callback URL (services/poller/callbacks.py)
    deliverect_callbacks: bool = True
    #: comma-separated host patterns a callback may go to (``*.x`` = any subdomain of x); others are refused
    deliverect_callback_hosts: str = "*.deliverect.com,*.deliverect.io"
    deliverect_callback_window_s: int = 1800  # Deliverect wants the answer within 30 minutes of the push
    #: a per-command failure may still be followed by the payload's other commands: wait this long for them
    deliverect_callback_grace_s: float = 60.0
    deliverect_callback_timeout_s: float = 10.0
    session_timeout_ms: int = 6000
