"""The invariants every canonical command must hold. Pure: a record in, a reason code or None out."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ingest.canonical.money import CURRENCIES
from ingest.canonical.units import is_known_unit

MAX_AMOUNT_MINOR = 10**15  # a quadrillion minor units: anything above is a unit mistake


class Violation(Exception):
    def __init__(self, reason_code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.reason_code, self.message, self.field = reason_code, message, field


def _amount(record: dict[str, Any], field: str, currency_field: str = "currency", *, required: bool) -> None:
    amount = record.get(field)
    if amount is None:
        if required:
            raise Violation("price_missing", f"{field} is required", field)
        return
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise Violation("price_format", f"{field} must be an integer number of minor units", field)
    if amount < 0:
        raise Violation("price_negative", f"{field} is negative ({amount})", field)
    if amount > MAX_AMOUNT_MINOR:
        raise Violation("price_out_of_range", f"{field} is implausibly large ({amount})", field)
    currency = record.get(currency_field)
    if currency is None:
        raise Violation("currency_missing", f"{currency_field} is required with {field}", currency_field)
    if currency not in CURRENCIES:
        raise Violation("currency_unknown", f"{currency!r} is not an ISO 4217 currency", currency_field)


def _category(record: dict[str, Any], default_category: str | None) -> dict[str, Any]:
    if record.get("category"):
        return record
    if default_category:
        return {**record, "category": default_category}
    raise Violation("category_missing", "no category and the tenant has no default category", "category")


def _ids(record: dict[str, Any], *fields: str) -> None:
    for f in fields:
        if not record.get(f):
            raise Violation("id_missing", f"{f} is empty", f)


def validate(name: str, record: dict[str, Any], *, default_category: str | None) -> dict[str, Any]:
    """The record, possibly completed (an assigned category); raises ``Violation``."""
    if name == "UpdatePrice":
        _ids(record, "itemId")
        _amount(record, "amountMinor", required=True)
    elif name == "UpsertMenuItem":
        _ids(record, "itemId")
        _amount(record, "amountMinor", required=False)
        for g, group in enumerate(record.get("modifierGroups") or []):
            if group["min"] < 0 or (group["max"] and group["max"] < group["min"]):
                raise Violation("modifier_bounds", f"modifierGroups[{g}] min/max out of order", "modifierGroups")
            for o, option in enumerate(group["options"]):
                if option["amountMinor"] < 0:
                    raise Violation("price_negative", f"modifierGroups[{g}].options[{o}] has a negative price",
                                    "modifierGroups")
        record = _category(record, default_category)
    elif name == "UpsertCatalogItem":
        _ids(record, "itemId", "name")
        record = _category(record, default_category)
    elif name == "UpdateStockLevel":
        _ids(record, "itemId")
        quantity = record.get("quantity")
        if quantity is not None:
            try:
                value = Decimal(quantity)
            except InvalidOperation:
                raise Violation("quantity_not_numeric", f"quantity {quantity!r} is not a number", "quantity") \
                    from None
            if not value.is_finite():
                raise Violation("quantity_not_numeric", f"quantity {quantity!r} is not finite", "quantity")
            if record.get("mode") == "absolute" and value < 0:
                raise Violation("quantity_negative", f"absolute quantity {quantity} is negative", "quantity")
        elif record.get("mode") == "delta":
            raise Violation("quantity_missing", "a delta needs a quantity", "quantity")
        if not is_known_unit(record.get("unit")):
            raise Violation("unit_unknown", f"unknown unit {record.get('unit')!r}", "unit")
    elif name == "UpdateStoreStatus":
        delay = record.get("busyDelayMinutes")
        if delay is not None and not 0 <= delay <= 24 * 60:
            raise Violation("busy_delay_out_of_range", f"busyDelayMinutes {delay} out of range", "busyDelayMinutes")
    elif name == "UpsertVariant":
        _ids(record, "itemId", "variantId")
    elif name == "UpdateOrderStatus":
        _ids(record, "orderId")
    return record
