"""Money: ISO 4217 currencies with their minor-unit exponents, and exact conversion to minor units.

Never float arithmetic: vendor floats go through ``Decimal(str(x))``. A value with more decimals than the
currency has is rounded half-up (the commercial rule; documented in the README).
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ingest.errors import UnparseablePayload

# Active ISO 4217 codes. Exponent 2 unless listed in _EXPONENTS.
_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL "
    "GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD "
    "KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO "
    "NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV "
    "WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"
).split()
_EXPONENTS = {
    **{c: 0 for c in "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()},
    **{c: 3 for c in "BHD IQD JOD KWD LYD OMR TND".split()},
    **{c: 4 for c in "CLF UYW".split()},
}
CURRENCIES: dict[str, int] = {code: _EXPONENTS.get(code, 2) for code in _CODES}

#: ISO 4217 numeric codes of the currencies vendors send as integers (Deliverect and others)
NUMERIC: dict[int, str] = {
    36: "AUD", 124: "CAD", 156: "CNY", 208: "DKK", 344: "HKD", 356: "INR", 360: "IDR", 392: "JPY",
    410: "KRW", 414: "KWD", 458: "MYR", 484: "MXN", 554: "NZD", 578: "NOK", 586: "PKR", 608: "PHP",
    634: "QAR", 643: "RUB", 682: "SAR", 702: "SGD", 710: "ZAR", 752: "SEK", 756: "CHF", 764: "THB",
    784: "AED", 818: "EGP", 826: "GBP", 840: "USD", 946: "RON", 949: "TRY", 978: "EUR", 985: "PLN",
    203: "CZK", 348: "HUF", 376: "ILS", 48: "BHD", 512: "OMR", 400: "JOD", 32: "ARS", 986: "BRL",
    152: "CLP", 170: "COP", 604: "PEN", 704: "VND", 50: "BDT", 144: "LKR", 524: "NPR",
}


class MoneyError(UnparseablePayload, ValueError):
    """A vendor amount that is no amount; classified, so one that escapes an adapter is a validation failure."""

    default_reason = "invalid_amount"


def exponent(currency: str) -> int:
    try:
        return CURRENCIES[currency.upper()]
    except KeyError:
        raise MoneyError(f"unknown ISO 4217 currency {currency!r}") from None


def to_decimal(value: object) -> Decimal:
    """A vendor amount (str, int, float, Decimal) as an exact Decimal; floats via ``str``."""
    if isinstance(value, bool) or value is None:
        raise MoneyError(f"not an amount: {value!r}")
    try:
        result = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise MoneyError(f"not an amount: {value!r}") from None
    if not result.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return result


def to_minor(amount: object, currency: str) -> int:
    """Major units → integer minor units of ``currency`` (``"15.00", "USD"`` → 1500), half-up."""
    value = to_decimal(amount)
    try:
        scaled = (value * (Decimal(10) ** exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the decimal context holds (10**40 rupees)
        raise MoneyError(f"amount out of range: {str(amount)[:40]!r}") from None
    return int(scaled)


def minor_from_implied(amount: object, implied_decimals: int, currency: str) -> int:
    """An integer with ``implied_decimals`` (Deliverect: 2) → minor units of ``currency``."""
    value = to_decimal(amount) / (Decimal(10) ** implied_decimals)
    return to_minor(value, currency)


def currency_from_numeric(code: int | str) -> str:
    try:
        return NUMERIC[int(code)]
    except (KeyError, ValueError):
        raise MoneyError(f"unknown ISO 4217 numeric currency code {code!r}") from None
