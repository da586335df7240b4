"""The INFERRED Omuni inventory-export row and the observed token exchange shapes.

No public Omuni inventory spec exists: the columns below are a guess from identifiers seen in public client
code (EAN as ``itemId``/``skuId``, fulfilment centre ``fcId`` as ``warehouseId``). Replace them when Omuni
shares the real export header.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

#: INFERRED export columns; only the first three are required
INFERRED_REQUIRED_COLUMNS = ("fc_id", "ean", "available_qty")
INFERRED_EVENT_TYPE = "inventory_export.INFERRED"


@dataclass(frozen=True)
class InferredInventoryRow:
    """One INFERRED export line: absolute sellable quantity of one EAN at one fulfilment centre."""

    row: int
    fc_id: str
    ean: str
    available_qty: str
    sku_code: str | None = None
    style_id: str | None = None
    snapshot_at: str | None = None


def token_request(username: str, password: str) -> bytes:
    """Body of ``POST https://api.omuni.com/bb/users/business-user/token`` (observed shape)."""
    return json.dumps({"grant_type": "password", "username": username, "password": password}).encode()


def token_pair(response: bytes) -> tuple[str, str | None]:
    """``(access_token, refresh_token)`` from the token response ``{"data": {...}}``."""
    data = json.loads(response).get("data") or {}
    if not data.get("access_token"):
        raise ValueError("token response has no data.access_token")
    return str(data["access_token"]), data.get("refresh_token")


def jwt_claims(token: str) -> dict[str, Any]:
    """The JWT's claims, **unverified** (the poller only reads ``tenantId`` off a token Omuni just gave it)."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, binascii.Error) as exc:
        raise ValueError("not a JWT") from exc
    if not isinstance(claims, dict):
        raise ValueError("JWT claims are not an object")
    return claims
