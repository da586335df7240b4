"""Provider adapters: one package per provider with the same four modules, and the explicit registry."""
from __future__ import annotations

from ingest.adapters.base import CommandFactory, Headers, ProviderAdapter, RawDelivery, SourceEvent
from ingest.adapters.registry import UnknownProvider, adapter_class, registered_providers

__all__ = ["CommandFactory", "Headers", "ProviderAdapter", "RawDelivery", "SourceEvent", "UnknownProvider",
           "adapter_class", "registered_providers"]
