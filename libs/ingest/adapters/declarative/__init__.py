"""Declarative adapters: a versioned YAML/JSON mapping spec instead of code (Posist, DotPe drafts)."""
from __future__ import annotations

from ingest.adapters.declarative.adapter import (
    DeclarativeAdapter,
    DotPeAdapter,
    PosistAdapter,
    SpecError,
    load_spec,
    packaged_spec,
    spec_adapter,
)
from ingest.adapters.declarative.payloads import MappingSpec

__all__ = ["DeclarativeAdapter", "DotPeAdapter", "MappingSpec", "PosistAdapter", "SpecError", "load_spec",
           "packaged_spec", "spec_adapter"]
