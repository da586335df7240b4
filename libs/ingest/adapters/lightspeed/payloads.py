"""Typed bodies of K-Series notifications and of the pulled menu load (providers-restaurant-pos.md §2)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class ItemAvailability(_Body):
    """``SALES_RESTRICTION_UPDATED`` (type ITEM): ``count`` null means no restriction."""

    sku: str
    businessLocationId: int
    count: int | None = None
    countUpdatedAt: datetime | None = None
    status: Literal["RESTRICTED", "NOT_RESTRICTED"]


class PosStatus(_Body):
    salesPeriod: Literal["OPENED", "CLOSED"] | None = None
    acceptingOnlineOrders: bool | None = None
    availableDevices: bool | None = None


class Readiness(_Body):
    """Online Ordering API readiness (type ORDER_API): the closest thing to an open/closed signal."""

    businessLocationId: int
    lastUpdatedAt: datetime | None = None
    status: Literal["READY", "NOT_READY"]
    posStatus: PosStatus = Field(default_factory=PosStatus)


class OrderNotification(_Body):
    thirdPartyReference: str  # our order reference, sent when we created the order
    businessLocationId: int
    status: str
    reason: str | None = None
    ikentooAccountIdentifier: str | None = None


class MenuEntry(_Body):
    type: str = Field(alias="@type")
    productName: str | None = None
    productPrice: float | int | str | None = None  # major units, a JSON number
    sku: str | None = None
    menuEntry: list[MenuEntry] = Field(default_factory=list)  # sub-screens (menuGroup)
    name: str | None = None


class MenuGroup(_Body):
    id: str | int | None = None
    name: str
    menuEntry: list[MenuEntry] = Field(default_factory=list)


class MenuLoad(_Body):
    """``GET /o/op/1/menu/load/{menuId}``, fetched by the poller (there is no menu webhook)."""

    menuName: str = ""
    ikentooMenuId: int | str
    menuEntryGroups: list[MenuGroup] = Field(default_factory=list)
    extra: dict[str, Any] | None = None
