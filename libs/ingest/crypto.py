"""Secrets at rest: AES-256-GCM with the key from ``SECRETS_KEY``; API key hashing."""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets as _secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
# Used only when SECRETS_KEY is unset (local development); production always sets it.
_DEV_KEY = hashlib.sha256(b"pos-ingest development key - set SECRETS_KEY in production").digest()
_warned = False


class SecretBox:
    def __init__(self, key_b64: str | None) -> None:
        global _warned
        if key_b64:
            key = base64.b64decode(key_b64)
            if len(key) != 32:
                raise ValueError("SECRETS_KEY must be base64 of 32 bytes")
        else:
            if not _warned:
                log.warning("SECRETS_KEY is not set: source secrets use the development key")
                _warned = True
            key = _DEV_KEY
        self._aead = AESGCM(key)

    def seal(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), b"pos-ingest-source-secret")

    def open(self, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], b"pos-ingest-source-secret").decode()


def new_api_key(key_id: int) -> str:
    """``pk_<keyId>_<43 random url-safe chars>``: the id is public, the rest is the secret."""
    return f"pk_{key_id}_{_secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_token() -> str:
    return _secrets.token_urlsafe(32)
