"""Canonical commands (contract §6). Field names on the wire are the camelCase aliases.

Models mirror ``schemas/commands/*.avsc`` one to one; ``tests/unit/test_schemas.py`` keeps them in step.
"""
from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

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

    @classmethod
    def record_of(cls, fields: dict[str, Any]) -> dict[str, Any] | None:
        """``cls.model_validate(fields).to_record()`` without building the model, or None where that is not
        provably the same: only field names (no aliases, nothing extra), every required one given, and each
        value of exactly the type its field declares (``str``, ``int``, ``bool``, ``datetime``, a literal's
        ``str``, ``list[str]``, ``dict[str, str]``, or None where optional) — values pydantic passes through
        unchanged (containers copied, as it copies them). Anything else, a value it might coerce or refuse
        included, is None: the caller validates with pydantic, which refuses it the same way as before."""
        build = _RECORD_BUILDERS.get(cls)
        if build is None:
            build = _RECORD_BUILDERS[cls] = _record_builder(cls)
        return build(fields)


def _no_record(fields: dict[str, Any]) -> None:
    return None


#: per command class, its generated ``record_of`` (``_no_record`` when a field is of a kind it does not vouch for)
_RECORD_BUILDERS: dict[type, Callable[[dict[str, Any]], dict[str, Any] | None]] = {}


def _record_builder(cls: type[CommandBase]) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """Straight-line code per class (a loop over the fields costs more than pydantic's own validation)."""
    decorators = cls.__pydantic_decorators__
    if (decorators.model_validators or decorators.field_serializers or decorators.model_serializers
            or decorators.computed_fields or cls.__pydantic_post_init__ is not None):
        return _no_record
    validators: dict[str, Callable[[Any], Any]] = {}
    for dec in decorators.field_validators.values():
        if dec.info.mode != "before" or len(inspect.signature(dec.func).parameters) != 1:
            return _no_record
        for f in dec.info.fields:
            if f in validators:
                return _no_record
            validators[f] = dec.func
    env: dict[str, Any] = {"NAMES": frozenset(cls.model_fields), "MISSING": object(), "str": str, "int": int,
                           "bool": bool, "datetime": datetime, "list": list, "dict": dict, "type": type,
                           "Exception": Exception}
    body = ["def build(f):", "    if not NAMES.issuperset(f):", "        return None"]
    out = []
    for i, (name, info) in enumerate(cls.model_fields.items()):
        annotation, optional = info.annotation, False
        if get_origin(annotation) in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1 or len(get_args(annotation)) != 2:
                return _no_record
            annotation, optional = args[0], True
        if info.exclude or info.serialization_alias is None or getattr(info, "default_factory_takes_data", False):
            return _no_record
        v = f"v{i}"
        if info.default_factory is not None:
            env[f"D{i}"] = info.default_factory
            get = f"f[{name!r}] if {name!r} in f else D{i}()"
        elif info.is_required():
            get = f"f.get({name!r}, MISSING)"  # which no check below accepts
        elif info.default is None or type(info.default) in (str, int, bool):
            env[f"D{i}"] = info.default
            get = f"f.get({name!r}, D{i})"
        else:
            return _no_record
        if name in validators:  # a before-validator runs on a given value only (defaults are not validated)
            env[f"V{i}"] = validators[name]
            body += ["    try:", f"        {v} = V{i}(f[{name!r}]) if {name!r} in f else {get}",
                     "    except Exception:", "        return None"]
        else:
            body.append(f"    {v} = {get}")
        none_ok = f"{v} is not None and " if optional else ""
        if annotation in (str, int, bool, datetime):
            body += [f"    if {none_ok}type({v}) is not {annotation.__name__}:", "        return None"]
        elif get_origin(annotation) is Literal and all(type(a) is str for a in get_args(annotation)):
            env[f"C{i}"] = frozenset(get_args(annotation))
            body += [f"    if {none_ok}(type({v}) is not str or {v} not in C{i}):", "        return None"]
        elif annotation == list[str]:
            body += [f"    if {none_ok}(type({v}) is not list or any(type(x) is not str for x in {v})):",
                     "        return None", f"    {v} = {v} if {v} is None else list({v})"]
        elif annotation == dict[str, str]:
            body += [f"    if {none_ok}(type({v}) is not dict or any(type(k) is not str or type(x) is not str "
                     f"for k, x in {v}.items())):", "        return None", f"    {v} = {v} if {v} is None else dict({v})"]
        else:
            return _no_record
        out.append(f"{info.serialization_alias!r}: {v}")
    out.append(f"'commandType': {cls.command_type!r}")
    body.append("    return {" + ", ".join(out) + "}")
    exec("\n".join(body), env)  # noqa: S102 — code generated from the model's own field declarations
    return env["build"]  # type: ignore[no-any-return]


class CommandRecord:
    """A command as its Avro record (``CommandBase.record_of``): what the feeds stage writes, without a model."""

    __slots__ = ("command_type", "record")

    def __init__(self, command_type: str, record: dict[str, Any]) -> None:
        self.command_type, self.record = command_type, record

    def to_record(self) -> dict[str, Any]:
        return self.record


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
