"""Dedupe settings."""
from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from ingest.settings import StageSettings


class DedupeSettings(StageSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")
    metrics_port: int = 9101
