"""Typed Shopify webhook bodies (REST resources at the subscription's API version)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Variant(_Body):
    id: int
    product_id: int | None = None
    title: str | None = None
    # decimal strings in the REST payloads; some senders write JSON numbers: kept as their text (str(x)),
    # so the amount is converted exactly like a string one, never through float arithmetic
    price: str | None = Field(None, coerce_numbers_to_str=True)
    compare_at_price: str | None = Field(None, coerce_numbers_to_str=True)
    sku: str | None = None
    barcode: str | None = None
    position: int | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None
    inventory_item_id: int | None = None
    inventory_policy: str | None = None


class Option(_Body):
    name: str
    position: int


class Image(_Body):
    src: str
    position: int | None = None


class Category(_Body):
    name: str | None = None
    full_name: str | None = None


class Product(_Body):
    id: int
    title: str
    body_html: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    handle: str | None = None
    status: str = "active"
    tags: str | None = None
    updated_at: datetime | None = None
    variants: list[Variant] = Field(default_factory=list)
    options: list[Option] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    category: Category | None = None


class ProductDeleted(_Body):
    id: int


class InventoryLevel(_Body):
    inventory_item_id: int
    location_id: int
    available: int | None = None
    updated_at: datetime | None = None


#: topic → model of the body
TOPIC_MODELS: dict[str, type[_Body]] = {
    "products/create": Product,
    "products/update": Product,
    "products/delete": ProductDeleted,
    "inventory_levels/update": InventoryLevel,
}
