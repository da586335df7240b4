"""WooCommerce webhooks: product.* (variations included), base64 HMAC over the raw body, unsigned ping."""
from __future__ import annotations

from ingest.adapters.woocommerce.adapter import WooCommerceAdapter

__all__ = ["WooCommerceAdapter"]
