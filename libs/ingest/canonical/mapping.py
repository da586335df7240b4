"""Mapping keys (what a payload refers to) and the mapping context (their canonical ids)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from ingest.errors import UnmappedReference
from ingest.ids import uuid5_str

Entity = Literal["merchant", "store", "item", "variant"]
ENTITIES: tuple[str, ...] = ("merchant", "store", "item", "variant")

#: namespace of auto-created canonical ids: uuid5(ns, "tenant|provider|entity|external_id")
AUTO_ID_NAMESPACE = uuid.UUID("6f1c4d0e-3b8a-5a53-9a0c-1d2b7f4e8a61")


@dataclass(frozen=True, order=True)
class MappingKey:
    """A vendor id of one entity kind, as the payload names it."""

    entity: Entity
    external_id: str

    def __str__(self) -> str:
        return f"{self.entity}:{self.external_id}"


def auto_canonical_id(tenant_id: str, provider: str, key: MappingKey) -> str:
    """The deterministic canonical id a tenant with auto-creation gets for an unmapped key."""
    return uuid5_str(AUTO_ID_NAMESPACE, f"{tenant_id}|{provider}|{key.entity}|{key.external_id}")


@dataclass(frozen=True)
class TenantSettings:
    """Per-tenant knobs adapters and the validator may read (never secrets)."""

    tenant_id: str
    auto_create_items: bool = False
    timezone: str = "UTC"
    default_currency: str | None = None
    default_category: str | None = "uncategorized"


@dataclass(frozen=True)
class MappingContext:
    """Canonical ids for the keys one payload names. ``resolve`` raises for anything missing."""

    tenant_id: str
    provider: str
    ids: dict[MappingKey, str] = field(default_factory=dict)
    settings: TenantSettings | None = None

    def resolve(self, entity: Entity, external_id: str | int) -> str:
        key = MappingKey(entity, str(external_id))
        try:
            return self.ids[key]
        except KeyError:
            raise UnmappedReference(f"no canonical id for {key}", missing=[(key.entity, key.external_id)]) \
                from None

    def resolve_optional(self, entity: Entity, external_id: str | int | None) -> str | None:
        return None if external_id is None else self.resolve(entity, external_id)

    @property
    def tenant(self) -> TenantSettings:
        return self.settings or TenantSettings(self.tenant_id)

    def missing(self, keys: frozenset[MappingKey]) -> list[MappingKey]:
        ids = self.ids
        absent = [k for k in keys if k not in ids]
        return sorted(absent) if absent else absent  # the feeds stage asks per row: almost always none
