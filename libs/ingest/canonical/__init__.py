"""The canonical model: commands every adapter produces, and the mapping context they resolve ids in."""
from __future__ import annotations

from ingest.canonical.commands import (
    COMMAND_TYPES,
    CanonicalCommand,
    CommandBase,
    ModifierGroup,
    ModifierOption,
    UpdateOrderStatus,
    UpdatePrice,
    UpdateStockLevel,
    UpdateStoreStatus,
    UpsertCatalogItem,
    UpsertMenuItem,
    UpsertVariant,
)
from ingest.canonical.mapping import MappingContext, MappingKey

__all__ = [
    "COMMAND_TYPES", "CanonicalCommand", "CommandBase", "MappingContext", "MappingKey", "ModifierGroup",
    "ModifierOption", "UpdateOrderStatus", "UpdatePrice", "UpdateStockLevel", "UpdateStoreStatus",
    "UpsertCatalogItem", "UpsertMenuItem", "UpsertVariant",
]
