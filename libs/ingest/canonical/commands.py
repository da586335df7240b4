"""Canonical commands (contract §6). Field names on the wire are the camelCase aliases.

Models mirror ``schemas/commands/*.avsc`` one to one; ``tests/unit/test_schemas.py`` keeps them in step.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ingest.canonical import units

StockMode = Literal["absolute", "delta"]
StockReason = Literal["sale", "receiving", "return", "transfer_in", "transfer_out", "shortage",
                      "adjustment", "snooze", "snapshot"]
PriceType = Literal["base", "sale", "menu"]
StoreStatus = Literal["OPEN", "CLOSED", "BUSY", "PAUSED"]
OrderStatus = Literal["ACCEPTED", "PREPARING", "READY", "PICKED_UP", "COMPLETED", "REJECTED",
                      "CANCELLED", "FAILED"]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="forbid")


class CommandBase(_Model):
    """Fields every canonical command carries."""

    command_type: ClassVar[str]
    #: the public topic the derived event goes to (contract §5)
    event_topic: ClassVar[str]
    #: the event type name on that topic
    event_type: ClassVar[str]

    command_id: str
    tenant_id: str
    provider: str
    raw_id: str
    occurred_at: datetime
    received_at: datetime
    merchant_id: str | None = None
    store_id: str | None = None

    @property
    def entity_id(self) -> str:
        """The id that orders this command against others (third part of the Kafka key)."""
        raise NotImplementedError

    def kafka_key(self) -> str:
        return f"{self.tenant_id}:{self.store_id or '-'}:{self.entity_id}"

    def to_record(self) -> dict[str, object]:
        """The Avro record: aliases, plus ``commandType``."""
        record = self.model_dump(by_alias=True)
        record["commandType"] = self.command_type
        return record


class UpsertCatalogItem(CommandBase):
    command_type: ClassVar[str] = "UpsertCatalogItem"
    event_topic: ClassVar[str] = "catalog.events"
    event_type: ClassVar[str] = "CatalogItemUpserted"

    item_id: str
    external_item_id: str
    name: str
    description: str | None = None
    brand: str | None = None
    category: str | None = None
    gtin: str | None = None
    image_urls: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    active: bool = True

    @property
    def entity_id(self) -> str:
        return self.item_id


class ModifierOption(_Model):
    external_item_id: str
    name: str
    amount_minor: int = 0


class ModifierGroup(_Model):
    name: str
    min: int = 0
    max: int = 0
    options: list[ModifierOption] = Field(default_factory=list)


class UpsertMenuItem(CommandBase):
    command_type: ClassVar[str] = "UpsertMenuItem"
    event_topic: ClassVar[str] = "catalog.events"
    event_type: ClassVar[str] = "MenuItemUpserted"

    menu_id: str | None = None
    item_id: str
    external_item_id: str
    name: str
    description: str | None = None
    category: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    modifier_groups: list[ModifierGroup] = Field(default_factory=list)
    available: bool = True

    @property
    def entity_id(self) -> str:
        return self.item_id


class UpsertVariant(CommandBase):
    command_type: ClassVar[str] = "UpsertVariant"
    event_topic: ClassVar[str] = "catalog.events"
    event_type: ClassVar[str] = "VariantUpserted"

    item_id: str
    variant_id: str
    external_variant_id: str
    name: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    gtin: str | None = None

    @property
    def entity_id(self) -> str:
        # variants of one item stay ordered with their item
        return self.item_id


class UpdateStockLevel(CommandBase):
    command_type: ClassVar[str] = "UpdateStockLevel"
    event_topic: ClassVar[str] = "inventory.events"
    event_type: ClassVar[str] = "StockLevelUpdated"

    item_id: str
    external_item_id: str
    variant_id: str | None = None
    mode: StockMode = "absolute"
    quantity: str | None = None
    unit: str | None = None
    available: bool = True
    reason: StockReason = "snapshot"
    available_again_at: datetime | None = None

    @field_validator("quantity", mode="before")
    @classmethod
    def _decimal_string(cls, value: object) -> object:
        if isinstance(value, Decimal):
            return units.quantity(value)
        if isinstance(value, (int, float)):
            raise TypeError("quantity must be a decimal string or Decimal, never a number")
        return value

    @property
    def entity_id(self) -> str:
        return self.item_id


class UpdatePrice(CommandBase):
    command_type: ClassVar[str] = "UpdatePrice"
    event_topic: ClassVar[str] = "pricing.events"
    event_type: ClassVar[str] = "PriceUpdated"

    item_id: str
    external_item_id: str
    variant_id: str | None = None
    amount_minor: int
    currency: str
    price_type: PriceType = "base"

    @property
    def entity_id(self) -> str:
        return self.item_id


class UpdateStoreStatus(CommandBase):
    command_type: ClassVar[str] = "UpdateStoreStatus"
    event_topic: ClassVar[str] = "store-status.events"
    event_type: ClassVar[str] = "StoreStatusUpdated"

    external_store_id: str
    status: StoreStatus
    busy_delay_minutes: int | None = None
    until: datetime | None = None

    @property
    def entity_id(self) -> str:
        return self.store_id or self.external_store_id


class UpdateOrderStatus(CommandBase):
    command_type: ClassVar[str] = "UpdateOrderStatus"
    event_topic: ClassVar[str] = "order-status.events"
    event_type: ClassVar[str] = "OrderStatusUpdated"

    order_id: str
    external_order_id: str
    status: OrderStatus

    @property
    def entity_id(self) -> str:
        return self.order_id


CanonicalCommand = Union[UpsertCatalogItem, UpsertMenuItem, UpsertVariant, UpdateStockLevel, UpdatePrice,
                         UpdateStoreStatus, UpdateOrderStatus]

COMMAND_TYPES: dict[str, type[CommandBase]] = {
    cls.command_type: cls
    for cls in (UpsertCatalogItem, UpsertMenuItem, UpsertVariant, UpdateStockLevel, UpdatePrice,
                UpdateStoreStatus, UpdateOrderStatus)
}
