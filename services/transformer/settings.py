"""Transformer settings."""
from __future__ import annotations

from ingest.settings import StageSettings


class TransformerSettings(StageSettings):
    metrics_port: int = 9103
