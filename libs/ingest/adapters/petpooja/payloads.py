"""Typed bodies of the PetPooja partner callbacks (providers-restaurant-pos.md §6). Nearly all strings."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


class RestaurantDetails(_Body):
    menusharingcode: str  # = restID in every other callback
    currency_html: str | None = None
    country: str | None = None


class Restaurant(_Body):
    restaurantid: str
    active: str = "1"
    details: RestaurantDetails


class Category(_Body):
    categoryid: str
    categoryname: str


class ItemAddon(_Body):
    addon_group_id: str
    addon_item_selection_min: str = "0"
    addon_item_selection_max: str = "0"


class Variation(_Body):
    id: str  # the item-variation row: unique per item, the variant's external id
    variationid: str | None = None  # the global variation ("Regular", "Large")
    name: str
    groupname: str | None = None
    price: str
    active: str = "1"


class Item(_Body):
    itemid: str
    itemname: str
    itemdescription: str | None = None
    item_categoryid: str | None = None
    price: str  # major units, decimal string
    active: str = "1"
    in_stock: str | None = None  # "2" on every in-stock fixture item; the enum is unpublished
    itemaddonbasedon: str = "0"
    variation_groupname: str | None = None
    variation: list[Variation] = Field(default_factory=list)
    addon: list[ItemAddon] = Field(default_factory=list)
    item_image_url: str | None = None


class AddonItem(_Body):
    addonitemid: str
    addonitem_name: str
    addonitem_price: str
    active: str = "1"


class AddonGroup(_Body):
    addongroupid: str
    addongroup_name: str
    active: str = "1"
    addongroupitems: list[AddonItem] = Field(default_factory=list)


class PushMenu(_Body):
    restaurants: list[Restaurant]
    categories: list[Category] = Field(default_factory=list)
    items: list[Item] = Field(default_factory=list)
    addongroups: list[AddonGroup] = Field(default_factory=list)
    serverdatetime: str | None = None


class StockChange(_Body):
    restID: str
    type: Literal["item", "addon"]
    inStock: bool
    itemID: list[str]
    autoTurnOnTime: str | None = None
    customTurnOnTime: str | None = None  # "YYYY-MM-DD HH:mm[:ss]", restaurant local time


class StoreStatus(_Body):
    restID: str
    store_status: str  # "1" on, "0" off; sent as a number or a string
    reason: str | None = None
    turn_on_time: str | None = None  # in the derived spec only


class OrderUpdate(_Body):
    restID: str
    orderID: str
    status: str
    cancel_reason: str | None = None
