"""PetPooja (we are the ordering partner): partner-issued Bearer token, menu/stock/store/order pushes."""
from __future__ import annotations

from ingest.adapters.petpooja.adapter import PetPoojaAdapter

__all__ = ["PetPoojaAdapter"]
