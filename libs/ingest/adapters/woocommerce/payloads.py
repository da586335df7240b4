"""Typed WooCommerce webhook bodies: the REST ``/wc/v3/products/{id}`` resource, or ``{"id": N}`` on delete."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Term(_Body):
    id: int | None = None
    name: str


class Image(_Body):
    src: str


class Attribute(_Body):
    name: str
    # a product lists ``options``; a variation names its one ``option``
    option: str | None = None
    options: list[str] = Field(default_factory=list)


class MetaData(_Body):
    key: str
    value: object = None


class Product(_Body):
    id: int
    name: str = ""
    type: str = "simple"
    status: str = "publish"
    parent_id: int = 0
    description: str | None = None
    short_description: str | None = None
    sku: str | None = None
    global_unique_id: str | None = None
    date_modified_gmt: str | None = None
    regular_price: str | None = None
    sale_price: str | None = None
    price: str | None = None
    # read-only: whether the sale price is the current price (a scheduled sale keeps sale_price set but is off)
    on_sale: bool | None = None
    manage_stock: bool | str = False
    stock_quantity: int | float | None = None
    stock_status: str | None = None
    categories: list[Term] = Field(default_factory=list)
    brands: list[Term] = Field(default_factory=list)
    tags: list[Term] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    attributes: list[Attribute] = Field(default_factory=list)
    meta_data: list[MetaData] = Field(default_factory=list)


class Deleted(_Body):
    id: int


#: topic → model of the body (``product.restored`` and ``product.published`` send the full resource too)
TOPIC_MODELS: dict[str, type[_Body]] = {
    "product.created": Product,
    "product.updated": Product,
    "product.restored": Product,
    "product.published": Product,
    "product.deleted": Deleted,
}
