"""Every provider, one line each: name → "module:Class". Unknown names fail loudly."""
from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.adapters.base import ProviderAdapter

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


class UnknownProvider(LookupError):
    pass


def registered_providers() -> list[str]:
    return sorted(ADAPTERS)


@cache
def adapter_class(provider: str) -> type[ProviderAdapter]:
    """The adapter class for ``provider``; raises ``UnknownProvider`` listing the valid names."""
    try:
        target = ADAPTERS[provider]
    except KeyError:
        raise UnknownProvider(f"unknown provider {provider!r}; known: {', '.join(registered_providers())}") \
            from None
    module_name, _, class_name = target.partition(":")
    cls: type[ProviderAdapter] = getattr(importlib.import_module(module_name), class_name)
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
