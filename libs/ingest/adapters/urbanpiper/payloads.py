"""Typed bodies of the UrbanPiper callbacks and webhooks (providers-restaurant-pos.md §5)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Location(_Body):
    id: int | None = None
    ref_id: str


class ToggledItem(_Body):
    id: int | None = None
    ilpa_id: int | None = None
    ref_id: str
    status: str  # "success" when the platform applied the action


class LocationStatus(_Body):
    location: Location
    items: list[ToggledItem] = Field(default_factory=list)


class ItemStateToggle(_Body):
    action: Literal["enable", "disable"]
    platform: str | None = None
    reference_id: str | None = None
    status: list[LocationStatus]
    ts_utc: int | None = None


class ToggledOption(_Body):
    id: int | None = None
    ref_id: str
    success: bool


class OptionStateToggle(_Body):
    action: Literal["enable", "disable"]
    platform: str | None = None
    reference_id: str | None = None
    location: Location
    options: list[ToggledOption]
    ts_utc: int | None = None


class StoreAction(_Body):
    action: Literal["enable", "disable"]
    location_ref_id: str
    location_upipr_id: int | None = None
    platform: str | None = None
    action_src: str | None = None
    reference_id: str | None = None
    status: bool  # False: the platform refused the action, nothing changed
    ts_utc: int | None = None


class UpiprStatus(_Body):
    action: str  # A added, U updated, D deleted
    id: int | None = None
    error: bool = False
    err_msg: str | None = None


class CatalogueEntry(_Body):
    ref_id: str
    title: str | None = None
    price: float | int | str | None = None  # major units, floats on the wire
    upipr_status: UpiprStatus


class InventoryUpdate(_Body):
    reference: str
    stats: dict[str, dict[str, int]] = Field(default_factory=dict)
    items: list[CatalogueEntry] = Field(default_factory=list)
    options: list[CatalogueEntry] = Field(default_factory=list)


class OrderStatusUpdate(_Body):
    # "store_id" is the POS store id (UrbanPiper FAQ): a number when the POS numbers its stores
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)

    order_id: int | str
    store_id: str
    prev_state: str | None = None
    new_state: str
    message: str | None = None
    timestamp_unix: int | None = None
