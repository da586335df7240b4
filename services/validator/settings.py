"""Validator settings."""
from __future__ import annotations

from ingest.settings import StageSettings


class ValidatorSettings(StageSettings):
    metrics_port: int = 9104
