"""Typed bodies of Revel webhooks and of the pulled product list (providers-restaurant-pos.md §3)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class InOutStock(_Body):
    """``inout.stock``: field names from the derived AsyncAPI; the docs show no body."""

    id: int
    instock: bool
    type: Literal["product", "modifier", "ingredient"] = "product"
    barcode: str | None = None


class MenuUpdated(_Body):
    event: str | None = None


class Product(_Body):
    id: int
    uuid: str | None = None
    name: str
    description: str | None = None
    price: float | int | str | None  # major units; null when the product has no price set
    barcode: str | None = None
    sku: str | None = None
    category: str | None = None  # a resource URI
    active: bool = True
    establishment: str | None = None  # "/enterprise/Establishment/1/"


class Page(_Body):
    limit: int | None = None
    offset: int | None = None
    total_count: int | None = None


class ProductList(_Body):
    """``GET /resources/Product/?establishment=…``: tastypie pages, fetched by the poller."""

    meta: Page = Field(default_factory=Page)
    objects: list[Product]
