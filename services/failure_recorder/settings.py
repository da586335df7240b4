"""Failure recorder settings."""
from __future__ import annotations

from ingest.settings import StageSettings


class FailureRecorderSettings(StageSettings):
    metrics_port: int = 9106
