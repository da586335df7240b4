"""Atlas Kitchen (Atlas Connect): Bearer or custom-header token; stock pushes, menus pulled by id."""
from __future__ import annotations

from ingest.adapters.atlas.adapter import AtlasAdapter

__all__ = ["AtlasAdapter"]
