"""Google Merchant Center product feeds (TSV, CSV, XML, JSON): streamed rows → catalog, price, availability."""
from __future__ import annotations

from ingest.adapters.google_merchant.adapter import GoogleMerchantAdapter

__all__ = ["GoogleMerchantAdapter"]
