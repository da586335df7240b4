"""Typed bodies of the Deliverect Channel API webhooks (providers-restaurant-pos.md §1)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, alias_generator=to_camel, populate_by_name=True)


class Product(_Body):
    """A product, modifier group, modifier or bundle: Deliverect uses one shape for all four."""

    id: str = Field(alias="_id")
    name: str = ""
    description: str | None = None
    plu: str
    product_type: int = 1
    price: int = 0  # two implied decimals (1250 = 12.50)
    image_url: str | None = None
    account: str | None = None
    visible: bool = True
    snoozed: bool = False
    snooze_id: str | None = None
    min: int = 0
    max: int = 0
    sub_products: list[str] = Field(default_factory=list)


class Category(_Body):
    id: str = Field(alias="_id")
    name: str
    account: str | None = None
    # the published example lists product ids in subProducts and leaves products empty; both are seen
    products: list[str] = Field(default_factory=list)
    sub_products: list[str] = Field(default_factory=list)


class SnoozedProduct(_Body):
    plu: str
    snooze_start: str | None = None
    snooze_end: str | None = None  # "2025-05-14 22:00:00.000000", no zone: UTC like the snooze webhook


class Menu(_Body):
    menu: str = ""
    menu_id: str
    channel_link_id: str
    # Deliverect's own enum (1 EUR, 2 GBP, 3 USD…), not ISO 4217 numeric; not among the fields the menu
    # glossary marks as always present, so a menu without it is priced in the tenant's currency
    currency: int | None = None
    categories: list[Category] = Field(default_factory=list)
    products: dict[str, Product] = Field(default_factory=dict)
    modifier_groups: dict[str, Product] = Field(default_factory=dict)
    modifiers: dict[str, Product] = Field(default_factory=dict)
    bundles: dict[str, Product] = Field(default_factory=dict)
    snoozed_products: dict[str, SnoozedProduct] = Field(default_factory=dict)


class MenuPush(_Body):
    """Both publishing flows: the synchronous array becomes ``menus``; the async form adds a callback."""

    menus: list[Menu]
    stores: list[str] = Field(default_factory=list)
    callback: str | None = None


class SnoozeItem(_Body):
    plu: str
    snooze_start: datetime | None = None
    snooze_end: datetime | None = None


class SnoozeData(_Body):
    items: list[SnoozeItem] = Field(default_factory=list)
    all_snoozed_items: list[SnoozeItem] | None = None


class SnoozeOperation(_Body):
    action: Literal["snooze", "unsnooze"]
    data: SnoozeData
    # the docs put it under data, a forum answer and the spec aggregator at this level: accept both
    all_snoozed_items: list[SnoozeItem] | None = None


class Snooze(_Body):
    account_id: str | None = None
    location_id: str | None = None
    channel_link_id: str
    operations: list[SnoozeOperation]


class BusyMode(_Body):
    account_id: str | None = None
    location_id: str | None = None
    channel_link_id: str
    status: Literal["PAUSED", "BUSY", "ONLINE"]
    delay: int | None = None


class OrderStatus(_Body):
    order_id: str
    status: int
    time_stamp: datetime | None = None
    receipt_id: str | None = None
    reason: str | None = None
    channel_order_id: str | None = None
    location: str | None = None
    channel_link: str


class ChannelRegistration(_Body):
    status: Literal["register", "active", "inactive"]
    channel_location_id: str | None = None
    channel_link_id: str
    location_id: str | None = None
    channel_link_name: str | None = None
