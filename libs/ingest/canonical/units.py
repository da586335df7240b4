"""Canonical units of measure and quantities as decimal strings."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ingest.errors import UnparseablePayload

#: canonical unit → accepted spellings (case-insensitive)
UNITS: dict[str, tuple[str, ...]] = {
    "each": ("each", "ea", "pc", "pcs", "piece", "pieces", "unit", "units", "nos", "no", "qty", "item"),
    "kg": ("kg", "kgs", "kilogram", "kilograms"),
    "g": ("g", "gm", "gms", "gram", "grams"),
    "l": ("l", "ltr", "litre", "liter", "litres", "liters"),
    "ml": ("ml", "millilitre", "milliliter"),
    "pack": ("pack", "pk", "box", "case"),
    "dozen": ("dozen", "dz"),
}
_LOOKUP = {alias: unit for unit, aliases in UNITS.items() for alias in aliases}


class QuantityError(UnparseablePayload, ValueError):
    """A vendor quantity that is no quantity; classified like MoneyError."""

    default_reason = "invalid_quantity"


def normalize_unit(unit: str | None) -> str | None:
    """The canonical unit for a vendor spelling, or the input lower-cased (the validator rejects unknowns)."""
    if unit is None or str(unit).strip() == "":
        return None
    text = str(unit).strip().lower()
    return _LOOKUP.get(text, text)


def is_known_unit(unit: str | None) -> bool:
    return unit is None or unit in UNITS


def quantity(value: object) -> str:
    """A vendor quantity as a canonical decimal string ("18.750" → "18.75", 3 → "3")."""
    if isinstance(value, bool) or value is None:
        raise QuantityError(f"not a quantity: {value!r}")
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise QuantityError(f"not a quantity: {value!r}") from None
    if not dec.is_finite():
        raise QuantityError(f"not a finite quantity: {value!r}")
    try:
        if dec == dec.to_integral_value():
            return str(dec.quantize(Decimal(1)))
    except InvalidOperation:  # more digits than the decimal context holds
        raise QuantityError(f"quantity out of range: {str(value)[:40]!r}") from None
    return format(dec.normalize(), "f")


def negate(text: str) -> str:
    return quantity(-Decimal(quantity(text)))
