"""Typed bodies of Atlas Kitchen webhooks and of the pulled menu detail (providers-restaurant-pos.md §4)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Envelope(_Body):
    event_type: str
    event_at: int  # unix seconds
    payload: dict[str, Any]


class StockUpdated(_Body):
    item_id: int
    outlet_id: int
    is_available: bool


class MenuUpdated(_Body):
    menu_id: int


class ModifierItem(_Body):
    id: int
    name: str
    sku: str | None = None
    price_cents: int = 0


class Modifier(_Body):
    id: int
    price_cents_override: int | None = None
    item: ModifierItem  # [inferred] in the reference


class ModifierGroupBody(_Body):
    id: int
    name: str
    selection_required_min: int | None = 0
    selection_required_max: int | None = 0
    modifiers: list[Modifier] = Field(default_factory=list)


class ItemModifierGroup(_Body):
    archived: bool = False
    selection_required_min_override: int | None = None
    selection_required_max_override: int | None = None
    modifier_group: ModifierGroupBody


class Product(_Body):
    id: int
    sku: str | None = None
    name: str
    description: str | None = None
    price_cents: int
    currency: str | None = None
    archived_at: int | None = None
    item_modifier_groups: list[ItemModifierGroup] = Field(default_factory=list)


class Section(_Body):
    id: int
    name: str
    products: list[Product] = Field(default_factory=list)
    sub_sections: list[Section] = Field(default_factory=list)


class MenuDetail(_Body):
    """``GET /admin/v1/menus/{menu_id}``, fetched by the poller after ``menu.updated``."""

    id: int
    identifier: str | None = None
    brand_id: int | None = None
    name: str = ""
    state: str = "published"
    updated_at: int | None = None
    sections: list[Section] = Field(default_factory=list)
