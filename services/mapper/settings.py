"""Mapping resolver settings."""
from __future__ import annotations

from ingest.settings import StageSettings


class MapperSettings(StageSettings):
    metrics_port: int = 9102
    tenant_cache_s: float = 5.0
