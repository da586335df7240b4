"""Omuni (Arvind Internet): bearer-JWT pull and an INFERRED CSV inventory export (no public inventory spec)."""
from __future__ import annotations

from ingest.adapters.omuni.adapter import OmuniAdapter

__all__ = ["OmuniAdapter"]
