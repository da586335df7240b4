"""Deterministic ids: RFC 4122 version-5 UUIDs as text, without building ``uuid.UUID`` objects.

``uuid5_str(ns, name) == str(uuid.uuid5(ns, name))`` for every input (pinned by tests/unit/test_ids.py); it
takes ~0.9 µs instead of ~4.6 µs, and the pipeline derives several ids per webhook (commands, events,
failures, auto-created mappings).
"""
from __future__ import annotations

import hashlib
import os
import uuid


#: namespace (its int) → its 16 bytes: ``UUID.bytes`` converts the int on every read (a third of an id's time)
_NAMESPACE_BYTES: dict[int, bytes] = {}


def uuid5_str(namespace: uuid.UUID, name: str) -> str:
    ns = _NAMESPACE_BYTES.get(namespace.int)
    if ns is None:
        ns = namespace.bytes
        if len(_NAMESPACE_BYTES) < 64:  # the pipeline has a handful of namespaces; a stray caller grows nothing
            _NAMESPACE_BYTES[namespace.int] = ns
    return _text(hashlib.sha1(ns + name.encode()).hexdigest(), "5")


def uuid4_str() -> str:
    """``str(uuid.uuid4())`` (random, version 4) without the ``UUID`` object: one raw id per webhook."""
    return _text(os.urandom(16).hex(), "4")


#: each hex digit with its top two bits replaced by the RFC 4122 variant (binary 10xx): 8, 9, a or b
_VARIANT = {d: "89ab"[int(d, 16) & 0x3] for d in "0123456789abcdef"}


def _text(hexdigest: str, version: str) -> str:
    """The first 16 bytes of a digest (as hex) as an RFC 4122 UUID of ``version`` ("4", "5"), in its text form:
    string slicing instead of byte masking, the same characters."""
    x = hexdigest
    return f"{x[:8]}-{x[8:12]}-{version}{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"
