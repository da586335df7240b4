"""Every provider, one line each: name → "module:Class". Unknown names fail loudly."""
from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.adapters.base import ProductFeed, ProviderAdapter

ADAPTERS: dict[str, str] = {
    # restaurant POS (kind pos)
    "deliverect": "ingest.adapters.deliverect:DeliverectAdapter",
    "lightspeed": "ingest.adapters.lightspeed:LightspeedAdapter",
    "revel": "ingest.adapters.revel:RevelAdapter",
    "atlas": "ingest.adapters.atlas:AtlasAdapter",
    "urbanpiper": "ingest.adapters.urbanpiper:UrbanPiperAdapter",
    "petpooja": "ingest.adapters.petpooja:PetPoojaAdapter",
    "posist": "ingest.adapters.declarative:PosistAdapter",
    "dotpe": "ingest.adapters.declarative:DotPeAdapter",
    # dark-store ERP/WMS (kind erp)
    "unicommerce": "ingest.adapters.unicommerce:UnicommerceAdapter",
    "vinculum": "ingest.adapters.vinculum:VinculumAdapter",
    "omuni": "ingest.adapters.omuni:OmuniAdapter",
    "inhouse-wms": "ingest.adapters.inhouse_wms:InhouseWmsAdapter",
    # seller platforms and feeds (kind seller)
    "shopify": "ingest.adapters.shopify:ShopifyAdapter",
    "woocommerce": "ingest.adapters.woocommerce:WooCommerceAdapter",
    "google-merchant": "ingest.adapters.google_merchant:GoogleMerchantAdapter",
    # partner Standard API (kind partner)
    "standard": "ingest.adapters.standard:StandardAdapter",
}

#: bulk product files the import route takes, per provider: name → "module:ProductFeed"
FEEDS: dict[str, str] = {
    "google-merchant": "ingest.adapters.google_merchant.translate:FEED",  # Google product data spec files
    "shopify": "ingest.adapters.shopify.feed:FEED",  # Shopify admin product CSV export
    "woocommerce": "ingest.adapters.woocommerce.feed:FEED",  # WooCommerce product CSV exporter
}


class UnknownProvider(LookupError):
    pass


def registered_providers() -> list[str]:
    return sorted(ADAPTERS)


def _load(table: dict[str, str], provider: str, unknown: str) -> Any:
    """The object ``table`` names for ``provider`` ("module:attribute"), imported on first use."""
    try:
        target = table[provider]
    except KeyError:
        raise UnknownProvider(unknown) from None
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@cache
def adapter_class(provider: str) -> type[ProviderAdapter]:
    """The adapter class for ``provider``; raises ``UnknownProvider`` listing the valid names."""
    cls: type[ProviderAdapter] = _load(
        ADAPTERS, provider, f"unknown provider {provider!r}; known: {', '.join(registered_providers())}")
    return cls


def available_providers() -> list[str]:
    """Providers whose adapter module imports (all of them, once every connector has landed)."""
    out = []
    for name in registered_providers():
        try:
            adapter_class(name)
        except (ImportError, AttributeError):
            continue
        out.append(name)
    return out


@cache
def product_feed(provider: str) -> ProductFeed:
    """The bulk file format of ``provider``; raises ``UnknownProvider`` naming those that have one."""
    feed: ProductFeed = _load(
        FEEDS, provider, f"{provider!r} takes no product files; those that do: {', '.join(sorted(FEEDS))}")
    return feed
