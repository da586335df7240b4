"""Deterministic ids: RFC 4122 version-5 UUIDs as text, without building ``uuid.UUID`` objects.

``uuid5_str(ns, name) == str(uuid.uuid5(ns, name))`` for every input (pinned by tests/unit/test_ids.py); it
takes ~1.7 µs instead of ~4.6 µs, and the pipeline derives several ids per webhook (commands, events,
failures, auto-created mappings).
"""
from __future__ import annotations

import hashlib
import os
import uuid


def uuid5_str(namespace: uuid.UUID, name: str) -> str:
    return _text(hashlib.sha1(namespace.bytes + name.encode()).digest(), 0x50)


def uuid4_str() -> str:
    """``str(uuid.uuid4())`` (random, version 4) without the ``UUID`` object: one raw id per webhook."""
    return _text(os.urandom(16), 0x40)


def _text(digest: bytes, version: int) -> str:
    """The first 16 bytes of ``digest`` as an RFC 4122 UUID of ``version`` (0x40, 0x50), in its text form."""
    h = bytearray(digest[:16])
    h[6] = (h[6] & 0x0F) | version
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
