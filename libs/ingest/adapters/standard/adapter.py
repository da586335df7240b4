"""Standard API adapter: the interface methods, the route parsing, and the outlet auto-registration list."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from pydantic import ValidationError

from ingest.adapters.base import (
    AuthTraits,
    CommandFactory,
    ProviderAdapter,
    RawDelivery,
    SourceEvent,
    load_json,
)
from ingest.adapters.standard import payloads, translate
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

#: route family → the path it is served on (``{id}`` is a ``payloads.PathId``)
ROUTES: dict[str, str] = {
    "outlets.sync": "/api/v1/outlets/sync",
    "products.sync": "/api/v1/products/sync",
    "outlets.status": "/api/v1/outlets/{id}/status",
    "outlets.busy": "/api/v1/outlets/{id}/busy",
    "orders.status": "/api/v1/orders/{id}/status",
}
ROUTE_METHODS: dict[str, str] = {"outlets.sync": "POST", "products.sync": "POST", "outlets.status": "PATCH",
                                 "outlets.busy": "PATCH", "orders.status": "PATCH"}
_ID = "(?P<id>[A-Za-z0-9._~:@-]{1,100})"  # payloads.PathId
_PATTERNS = {family: re.compile("^" + re.escape(path).replace(re.escape("{id}"), _ID) + "/?$")
             for family, path in ROUTES.items()}


def route_family(method: str, path: str) -> tuple[str, str | None] | None:
    """``("PATCH", "/api/v1/outlets/OUT-1/busy")`` → ``("outlets.busy", "OUT-1")``; None if no route matches.

    For the receiver's router; the adapter uses the same patterns, so the two cannot disagree.
    """
    for family, pattern in _PATTERNS.items():
        match = pattern.match(path)
        if match and ROUTE_METHODS[family] == method.upper():
            return family, match.groupdict().get("id")
    return None


class StandardSource(SourceEvent):
    request: payloads.RequestBase
    path_id: str | None = None
    merchant: str


class StandardAdapter(ProviderAdapter[StandardSource]):
    provider = "standard"
    kind = "partner"
    # The partner authenticates with a tenant-scoped X-Api-Key that the receiver checks against the key
    # store before anything is stored; the key is a bearer credential, not a signature over the body.
    auth = AuthTraits(covers_body=False, unsigned=True)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """No-op: the API key was checked by the receiver (it needs the key store, which an adapter must
        not reach); there is no body signature to verify, and a stored delivery is authenticated already."""
        return None

    def parse(self, raw: RawDelivery) -> StandardSource:
        model = payloads.REQUEST_MODELS.get(raw.family)
        if model is None:
            raise UnsupportedEvent(f"Standard API family {raw.family!r} is not handled")
        path_id: str | None = None
        if "{id}" in ROUTES[raw.family]:
            match = _PATTERNS[raw.family].match(raw.route)
            if match is None:
                raise UnparseablePayload(f"route {raw.route!r} does not match {ROUTES[raw.family]}",
                                         reason_code="bad_route")
            path_id = match.group("id")
        body = load_json(raw.body)
        try:
            request = model.model_validate(body)
        except ValidationError as exc:
            raise UnparseablePayload(f"{raw.family}: {payloads.first_error(exc)}",
                                     reason_code="invalid_request") from exc
        return StandardSource(event_type=raw.family, event_id=self._event_id(raw, request),
                              occurred_at=request.occurred_at, payload=body, delivery=raw, request=request,
                              path_id=path_id, merchant=request.merchant_id or raw.tenant_id)

    @staticmethod
    def _event_id(raw: RawDelivery, request: payloads.RequestBase) -> str | None:
        # both are the partner's own name for this request; refCode wins as it is part of the stored body
        return request.ref_code or raw.headers.get("Idempotency-Key") or None

    def dedupe_key(self, source: StandardSource) -> str:
        """Scoped by path: the same refCode or body sent to two outlets is two requests.

        Without a refCode or Idempotency-Key a body is deduplicated by hash only when it carries
        ``occurredAt``: ``{"status": "OPEN"}`` legitimately repeats (open, close, open again) and must not be
        dropped as a duplicate. Such requests get the rawId as key, i.e. no deduplication, which is safe
        because every Standard operation states a level (status, price, stock), so applying it twice is a
        no-op downstream.
        """
        route = source.delivery.route or ROUTES[source.event_type]
        if source.event_id:
            return f"{self.provider}:ref:{route}:{source.event_id}"
        if source.occurred_at is not None:
            digest = hashlib.sha256(route.encode() + b"\n" + source.delivery.body).hexdigest()
            return f"{self.provider}:sha256:{digest}"
        return f"{self.provider}:raw:{source.delivery.raw_id}"

    def mapping_keys(self, source: StandardSource) -> frozenset[MappingKey]:
        return translate.keys(source.request, source.path_id, source.merchant)

    def declared_mappings(self, source: StandardSource) -> list[tuple[MappingKey, str | None]]:
        """What the partner's own requests register, whatever the tenant's ``auto_create_items``: the partner's
        outlets and products *are* its catalogue, so there is nothing to map them to.

        - every request: its merchant (the tenant, or the ``merchantId`` the partner names);
        - ``outlets.sync``: the stores it lists (``store_mappings``);
        - ``products.sync``: the stores in ``outletIds``, and every product (``item``) and variant it lists.

        Status, busy and order-status calls only *refer* to an outlet: one never declared by a sync fails as
        ``mapping``/``unmapped_reference`` (visible in ``GET /api/v1/operations/{rawId}``), so a typo in a URL
        never creates a phantom store. All ids are None: the resolver uses deterministic ids and never
        overwrites an existing mapping.
        """
        declared: list[MappingKey] = [MappingKey("merchant", source.merchant)]
        declared += [MappingKey("store", external_id) for external_id, _ in store_mappings(source)]
        request = source.request
        if isinstance(request, payloads.ProductsSyncRequest):
            declared += [MappingKey("store", outlet) for outlet in request.outlet_ids]
            for product in request.products:
                declared.append(MappingKey("item", product.id))
                declared += [MappingKey("variant", v.id) for v in product.variants]
        return [(key, None) for key in declared]

    def to_canonical_commands(self, source: StandardSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve("merchant", source.merchant))
        return translate.TRANSLATORS[source.event_type](source.request, source.path_id, make, mapping_context)


def store_mappings(source: StandardSource) -> list[tuple[str, str | None]]:
    """Outlets a sync registers: ``(external outlet id, proposed canonical id or None)``, in request order.

    For ``outlets.sync`` only (other families refer to outlets, they do not declare them). The proposal is
    always None: the resolver mints the id (``auto_canonical_id``) or keeps an existing mapping, so the
    partner never chooses our ids. The resolver should insert these ``store`` mappings before resolving,
    whatever the tenant's ``auto_create_items``, because declaring outlets is what this call is for.
    """
    if not isinstance(source.request, payloads.OutletsSyncRequest):
        return []
    return [(outlet.id, None) for outlet in source.request.outlets]
