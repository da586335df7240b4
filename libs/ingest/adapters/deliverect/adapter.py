"""Deliverect adapter: the interface methods, nothing else."""
from __future__ import annotations

import hashlib
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
from ingest.adapters.deliverect import payloads as p
from ingest.adapters.deliverect import translate
from ingest.adapters.signing import sign_body, verify_body_hmac
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload, UnsupportedEvent

SIGNATURE_HEADER = "X-Server-Authorization-HMAC-SHA256"

#: the Channel Registration answer: Deliverect's key → our route family ("" = never called)
REGISTRATION_URLS = {
    "statusUpdateURL": "order-status",
    "menuUpdateURL": "menu",
    "snoozeUnsnoozeURL": "inventory",
    "busyModeURL": "store-status",
    "updatePrepTimeURL": "",
    "courierUpdateURL": "",
}


class DeliverectSource(SourceEvent):
    body: Any  # one of the payloads models
    #: async menu publishing: where the receiver/poller reports ONLINE|FAILED (adapters do no I/O)
    callback_url: str | None = None


class DeliverectAdapter(ProviderAdapter[DeliverectSource]):
    provider = "deliverect"
    kind = "pos"
    auth = AuthTraits(covers_body=True, timestamped=False)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        # production: the partner secret; staging: the channelLinkId (configure it as the source secret)
        verify_body_hmac(headers, raw_body, self.secrets, header_name=SIGNATURE_HEADER, encoding="hex")

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        return {SIGNATURE_HEADER: sign_body(secret, body, encoding="hex")}

    def accepted_reply(self, family: str, raw_body: bytes, *, raw_id: str, base_url: str) -> Reply | None:
        try:
            body = load_json(raw_body)
        except UnparseablePayload:
            return None
        kind = _classify(body)
        if kind == "channel_registration":
            root = f"{base_url.rstrip('/')}/v1/integrations/pos/{self.provider}/webhooks"
            return Reply(200, {key: f"{root}/{fam}" if fam else "" for key, fam in REGISTRATION_URLS.items()})
        if kind == "busy_mode":
            # Deliverect wants the store's status echoed back
            return Reply(200, {"status": body["status"]})
        return None

    def parse(self, raw: RawDelivery) -> DeliverectSource:
        data = load_json(raw.body)
        kind = _classify(data)
        if kind is None:
            raise UnsupportedEvent("not a Deliverect Channel API webhook we handle (prep time, courier…)")
        if kind == "menu_update" and isinstance(data, list):
            data = {"menus": data}
        body = _validate(_MODELS[kind], data, kind)
        if kind == "channel_registration":
            # onboarding: answered by accepted_reply; the store mapping is an admin action, not a command
            raise UnsupportedEvent("channel registration carries no catalog change")
        event_type, event_id, occurred_at = kind, None, None
        if isinstance(body, p.Snooze):
            actions = {op.action for op in body.operations}
            event_type = actions.pop() if len(actions) == 1 else "snooze_unsnooze"
        elif isinstance(body, p.OrderStatus):
            if body.status not in translate.ORDER_STATUS:
                raise UnsupportedEvent(f"order status {body.status} has no canonical meaning")
            stamp = body.time_stamp.isoformat() if body.time_stamp else ""
            event_id = f"order:{body.order_id}:{body.status}:{stamp}"
            occurred_at = body.time_stamp
        elif isinstance(body, p.MenuPush):
            # menus carry no event id: menuId + body hash
            digest = hashlib.sha256(raw.body).hexdigest()[:32]
            event_id = f"menu:{'+'.join(m.menu_id for m in body.menus)}:{digest}"
        return DeliverectSource(event_type=event_type, event_id=event_id, occurred_at=occurred_at,
                                payload=data, delivery=raw, body=body,
                                callback_url=body.callback if isinstance(body, p.MenuPush) else None)

    def mapping_keys(self, source: DeliverectSource) -> frozenset[MappingKey]:
        return translate.keys(source.event_type, source.body)

    def to_canonical_commands(self, source: DeliverectSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        body = source.body
        if isinstance(body, p.MenuPush):
            make = CommandFactory(source, mapping_context)
            digits = self.options.get("price_decimal_digits")
            return translate.menu_update(body, make, mapping_context,
                                         implied_digits=int(digits) if digits is not None else None)
        store = translate.store_of(body)
        account = getattr(body, "account_id", None)
        make = CommandFactory(source, mapping_context, store_id=mapping_context.resolve("store", store),
                              merchant_id=mapping_context.resolve("merchant", account) if account else None)
        kind = "snooze" if isinstance(body, p.Snooze) else source.event_type
        return translate.TRANSLATORS[kind](body, make, mapping_context)


_MODELS: dict[str, type[BaseModel]] = {
    "menu_update": p.MenuPush,
    "snooze": p.Snooze,
    "busy_mode": p.BusyMode,
    "order_status_update": p.OrderStatus,
    "channel_registration": p.ChannelRegistration,
}


def _classify(data: Any) -> str | None:
    """Deliverect names no event type: each webhook has a distinct shape."""
    if isinstance(data, list) or (isinstance(data, dict) and "menus" in data):
        return "menu_update"
    if not isinstance(data, dict):
        return None
    if "operations" in data:
        return "snooze"
    status = data.get("status")
    if "orderId" in data and isinstance(status, int):
        return "order_status_update"
    if status in ("PAUSED", "BUSY", "ONLINE"):
        return "busy_mode"
    if status in ("register", "active", "inactive"):
        return "channel_registration"
    return None


def _validate(model: type[BaseModel], data: Any, kind: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        raise UnparseablePayload(f"{kind}: {where}: {err.get('msg')}") from exc
