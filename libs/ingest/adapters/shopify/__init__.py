"""Shopify webhooks: products and inventory levels, base64 HMAC over the raw body."""
from __future__ import annotations

from ingest.adapters.shopify.adapter import ShopifyAdapter

__all__ = ["ShopifyAdapter"]
