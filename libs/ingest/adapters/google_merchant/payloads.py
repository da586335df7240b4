"""Google product data attributes as rows carry them, and parsers for the typed ones (price, availability)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ingest.canonical.money import MoneyError, exponent, to_decimal

#: ``availability`` values (file spec, lower case; older feeds write them with a space)
AVAILABILITY = frozenset({"in_stock", "out_of_stock", "preorder", "backorder"})
#: attributes carried on the variant as they are
VARIANT_ATTRIBUTES = ("size", "color", "material", "pattern", "gender", "age_group", "condition", "mpn",
                      "link", "unit_pricing_measure", "unit_pricing_base_measure", "shipping_weight",
                      "sale_price_effective_date", "content_language", "feed_label")
ITEM_ATTRIBUTES = ("product_type", "google_product_category", "custom_label_0", "custom_label_1",
                   "custom_label_2", "custom_label_3", "custom_label_4")

_PRICE = re.compile(r"^\s*(?:(?P<c1>[A-Za-z]{3})\s+)?(?P<amount>[0-9]+(?:\.[0-9]+)?)(?:\s*(?P<c2>[A-Za-z]{3}))?\s*$")


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str


def parse_price(text: str, default_currency: str | None) -> Price:
    """``"15.00 USD"`` (also ``"USD 15.00"``; a bare number takes ``default_currency``) → ``Price``."""
    m = _PRICE.match(text)
    if m is None:
        raise MoneyError(f"not a price: {text!r} (expected e.g. '15.00 USD')")
    currency = (m.group("c1") or m.group("c2") or default_currency or "").upper()
    if not currency:
        raise MoneyError(f"price {text!r} has no currency and no default currency is configured")
    exponent(currency)  # unknown codes fail here, naming the code
    return Price(to_decimal(m.group("amount")), currency)


def parse_availability(text: str) -> str:
    value = text.strip().lower().replace(" ", "_")
    if value not in AVAILABILITY:
        raise ValueError(f"unknown availability {text!r}; expected one of {', '.join(sorted(AVAILABILITY))}")
    return value
