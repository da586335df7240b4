"""PetPooja adapter: the interface methods, nothing else."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ingest.adapters.base import (
    AuthTraits,
    CommandFactory,
    ProviderAdapter,
    RawDelivery,
    Reply,
    SourceEvent,
    load_json,
)
from ingest.adapters.petpooja import payloads as p
from ingest.adapters.petpooja import translate
from ingest.adapters.signing import verify_static_token
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

_MODELS: dict[str, type[BaseModel]] = {
    "push_menu": p.PushMenu,
    "item_out_of_stock": p.StockChange,
    "item_in_stock": p.StockChange,
    "update_store_status": p.StoreStatus,
    "update_order": p.OrderUpdate,
}

#: the bodies PetPooja expects back (from the one public partner implementation)
_ACK = {"http_code": 200, "status": "success"}
_REPLIES: dict[str, dict[str, Any]] = {
    "push_menu": {"success": "1", "message": "Menu items are successfully listed."},
    "item_out_of_stock": {**_ACK, "message": "Stock status updated successfully"},
    "item_in_stock": {**_ACK, "message": "Stock status updated successfully"},
    "update_order": {**_ACK, "message": "Order updated successfully"},
}


class PetPoojaSource(SourceEvent):
    body: Any


class PetPoojaAdapter(ProviderAdapter[PetPoojaSource]):
    provider = "petpooja"
    kind = "pos"
    # a partner-issued static Bearer token: covers no body bytes, carries no timestamp
    auth = AuthTraits(covers_body=False, timestamped=False)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        verify_static_token(headers, self.secrets, header_name="Authorization", prefixes=("Bearer ",))

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def accepted_reply(self, family: str, raw_body: bytes, *, raw_id: str, base_url: str) -> Reply | None:
        try:
            data = load_json(raw_body)
        except UnparseablePayload:
            return None
        kind = _classify(data)
        if kind == "update_store_status":
            return Reply(200, {**_ACK, "message": f"Store Status updated successfully for store "
                                                  f"{data.get('restID', '')}"})
        # get_store_status wants the current status, which only the views know: the receiver asks
        # store_status_query, reads the views and answers with status_reply
        return Reply(200, _REPLIES[kind]) if kind in _REPLIES else None

    def store_status_query(self, family: str, raw_body: bytes) -> str | None:
        try:
            data = load_json(raw_body)
        except UnparseablePayload:
            return None
        return str(data["restID"]) if _classify(data) == "get_store_status" else None

    def status_reply(self, store_status: str | None, *, stale: bool = False) -> Reply:
        # PetPooja knows on ("1") and off ("0"): busy still takes orders, paused does not
        if store_status is None:
            # unknown (never reported, or the views unreadable with nothing known): say on rather than
            # switch a store off on a guess; the message says it is a guess
            return Reply(200, {**_ACK, "store_status": "1",
                               "message": "Store status not known yet; reported as on"})
        flag = "0" if store_status in ("CLOSED", "PAUSED") else "1"
        message = ("Store status fetched successfully" if not stale else
                   "Store status unavailable just now; last known status reported")
        return Reply(200, {**_ACK, "store_status": flag, "message": message})

    def parse(self, raw: RawDelivery) -> PetPoojaSource:
        data = load_json(raw.body)
        kind = _classify(data)
        if kind not in _MODELS:
            raise UnsupportedEvent(f"PetPooja {kind or 'unknown'} callback is not translated")
        try:
            body: Any = _MODELS[kind].model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UnparseablePayload(f"{kind}: {err.get('loc')}: {err.get('msg')}") from exc
        event_id = None
        if isinstance(body, p.OrderUpdate):
            if body.status not in translate.ORDER_STATUS:
                raise UnsupportedEvent(f"order status {body.status!r} has no canonical meaning")
            event_id = f"order:{body.restID}:{body.orderID}:{body.status}"
        # no event ids otherwise: the body hash dedupes
        return PetPoojaSource(event_type=kind, event_id=event_id, payload=data, delivery=raw, body=body)

    def mapping_keys(self, source: PetPoojaSource) -> frozenset[MappingKey]:
        return translate.keys(source.body)

    def to_canonical_commands(self, source: PetPoojaSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        body = source.body
        store = None if isinstance(body, p.PushMenu) else mapping_context.resolve("store", body.restID)
        make = CommandFactory(source, mapping_context, store_id=store)
        return translate.TRANSLATORS[source.event_type](body, make, mapping_context)


def _classify(data: Any) -> str | None:
    """PetPooja calls one partner URL per purpose and names no event type: each body has its own shape."""
    if not isinstance(data, dict):
        return None
    if "restaurants" in data and "items" in data:
        return "push_menu"
    if "inStock" in data:
        return "item_in_stock" if data["inStock"] is True else "item_out_of_stock"
    if "store_status" in data:
        return "update_store_status"
    if "orderID" in data and "status" in data:
        return "update_order"
    if set(data) == {"restID"}:
        return "get_store_status"
    return None
