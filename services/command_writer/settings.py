"""Command writer settings."""
from __future__ import annotations

from ingest.settings import StageSettings


class CommandWriterSettings(StageSettings):
    metrics_port: int = 9105
