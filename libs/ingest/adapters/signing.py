"""Signature schemes shared by adapters. Pure: bytes and headers in, ``None`` or ``InvalidSignature`` out.

Every comparison is constant time (``hmac.compare_digest``); every scheme accepts several active secrets
so a source can rotate without downtime.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Literal

from ingest.errors import InvalidSignature

Encoding = Literal["hex", "base64"]
Algorithm = Literal["sha256", "sha1"]


def header(headers: Mapping[str, str], name: str) -> str:
    """The header's value (case-insensitive), or ``InvalidSignature('missing …')``."""
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            if value is None or value == "":
                break
            return value
    raise InvalidSignature(f"missing {name} header", reason_code="missing_signature")


def optional_header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def hmac_digest(secret: bytes, message: bytes, algorithm: Algorithm = "sha256") -> bytes:
    return hmac.new(secret, message, getattr(hashlib, algorithm)).digest()


def encode_digest(digest: bytes, encoding: Encoding) -> str:
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def sign_body(secret: str | bytes, body: bytes, *, encoding: Encoding = "hex",
              algorithm: Algorithm = "sha256") -> str:
    """The signature a sender computes over the raw body (used by tests and the load generator too)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return encode_digest(hmac_digest(key, body, algorithm), encoding)


def _strip_prefix(value: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if value.lower().startswith(prefix.lower()):
            return value[len(prefix):]
    return value


def verify_body_hmac(headers: Mapping[str, str], raw_body: bytes, secrets: list[str], *,
                     header_name: str, encoding: Encoding = "hex", algorithm: Algorithm = "sha256",
                     prefixes: tuple[str, ...] = ()) -> None:
    """HMAC over the exact raw body, hex or base64, against any active secret."""
    if not secrets:
        raise InvalidSignature("no secret configured for this source", reason_code="no_secret")
    presented = _strip_prefix(header(headers, header_name).strip(), prefixes)
    if encoding == "hex":
        presented = presented.lower()
    matched = False
    for secret in secrets:
        expected = sign_body(secret, raw_body, encoding=encoding, algorithm=algorithm)
        # no early exit: every secret is compared, so timing does not tell which one matched
        matched |= hmac.compare_digest(presented.encode(), expected.encode())
    if not matched:
        raise InvalidSignature("signature mismatch", reason_code="signature_mismatch")


def verify_static_token(headers: Mapping[str, str], secrets: list[str], *, header_name: str,
                        prefixes: tuple[str, ...] = ()) -> None:
    """A static token in a header (``Authorization: Bearer …``, ``apiKey``…), constant-time compared."""
    if not secrets:
        raise InvalidSignature("no secret configured for this source", reason_code="no_secret")
    presented = _strip_prefix(header(headers, header_name).strip(), prefixes).strip()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(presented.encode(), secret.encode())
    if not matched:
        raise InvalidSignature("token mismatch", reason_code="token_mismatch")


def verify_basic_auth(headers: Mapping[str, str], secrets: list[str]) -> None:
    """HTTP basic auth; each secret is ``user:password``."""
    value = header(headers, "Authorization").strip()
    if not value.lower().startswith("basic "):
        raise InvalidSignature("not basic auth", reason_code="bad_scheme")
    try:
        presented = base64.b64decode(value[6:].strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSignature("malformed basic auth", reason_code="bad_format") from exc
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(presented, secret.encode())
    if not matched:
        raise InvalidSignature("credentials mismatch", reason_code="token_mismatch")


# --- Standard Webhooks v1 ---------------------------------------------------------------------
def standard_webhooks_key(secret: str) -> bytes:
    """``whsec_<base64>`` secrets are base64-decoded; any other secret is used as its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSignature("malformed whsec_ secret", reason_code="bad_secret") from exc
    return secret.encode()


def standard_webhooks_sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    key = standard_webhooks_key(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac_digest(key, signed)).decode("ascii")


def verify_standard_webhooks(headers: Mapping[str, str], raw_body: bytes, secrets: list[str], *,
                             now: Callable[[], datetime], tolerance_seconds: int = 300,
                             prefix: str = "webhook") -> None:
    """Standard Webhooks v1 (also Svix with ``prefix='svix'``): id, timestamp, space-separated ``v1,`` sigs.

    The timestamp is checked in both directions against ``tolerance_seconds``.
    """
    if not secrets:
        raise InvalidSignature("no secret configured for this source", reason_code="no_secret")
    msg_id = header(headers, f"{prefix}-id")
    ts_text = header(headers, f"{prefix}-timestamp")
    sig_header = header(headers, f"{prefix}-signature")
    try:
        ts = int(ts_text)
    except ValueError as exc:
        raise InvalidSignature("malformed timestamp", reason_code="bad_timestamp") from exc
    skew = now().timestamp() - ts
    if skew > tolerance_seconds:
        raise InvalidSignature("timestamp too old", reason_code="stale_timestamp")
    if skew < -tolerance_seconds:
        raise InvalidSignature("timestamp in the future", reason_code="future_timestamp")
    presented = [p.split(",", 1)[1] for p in sig_header.split() if p.startswith("v1,") and "," in p]
    if not presented:
        raise InvalidSignature("no v1 signature", reason_code="bad_format")
    matched = False
    for secret in secrets:
        expected = standard_webhooks_sign(secret, msg_id, ts_text, raw_body).split(",", 1)[1].encode()
        for candidate in presented:
            matched |= hmac.compare_digest(candidate.encode(), expected)
    if not matched:
        raise InvalidSignature("signature mismatch", reason_code="signature_mismatch")
