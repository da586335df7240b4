"""Avro single-object encoding (``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint + body).

Every ``.avsc`` under ``schemas/`` is parsed once; records are looked up by their short name
(``RawReceived``, ``UpdatePrice``, ``StockLevelUpdated`` …) to encode, and by fingerprint to decode, so a
topic may carry several record types (``catalog.commands`` does) and any reader can decode it.
"""
from __future__ import annotations

import io
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

MAGIC = b"\xc3\x01"
_EMPTY = 0xC15D213AA4D7A795
_TABLE: list[int] = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    """The Avro spec's CRC-64-AVRO (Rabin) fingerprint of ``data``."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


class DecodeError(ValueError):
    """Bytes that are not a single-object-encoded record of a known schema."""


def schemas_dir() -> Path:
    override = os.environ.get("POS_INGEST_SCHEMAS_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "schemas"
        if (candidate / "envelope" / "RawReceived.avsc").exists():
            return candidate
    raise FileNotFoundError("schemas/ not found; set POS_INGEST_SCHEMAS_DIR")


class Codec:
    """Encode by record name, decode by fingerprint."""

    def __init__(self, directory: Path) -> None:
        self.schemas: dict[str, Any] = {}
        self.raw: dict[str, dict[str, Any]] = {}
        self._prefix: dict[str, bytes] = {}
        self._by_fp: dict[bytes, str] = {}
        for path in sorted(directory.rglob("*.avsc")):
            schema = json.loads(path.read_text())
            parsed = fastavro.parse_schema(schema, _write_hint=True)
            name = schema["name"]
            if name in self.schemas:
                raise ValueError(f"two schemas named {name}")
            fp = crc64_avro(to_parsing_canonical_form(parsed).encode()).to_bytes(8, "little")
            self.schemas[name] = parsed
            self.raw[name] = schema
            self._prefix[name] = MAGIC + fp
            self._by_fp[fp] = name

    @cache  # noqa: B019 — one Codec per process, a handful of schema pairs
    def _layout(self, target: str, head: tuple[str, ...], source: str, tail: tuple[str, ...]) -> Any:
        """The parsed schemas of ``head`` and ``tail`` when ``target``'s fields are exactly ``head`` + the fields of
        ``source`` + ``tail`` with the same encodings (names, namespaces and docs aside); else None."""
        src, dst = self.raw[source]["fields"], self.raw[target]["fields"]
        names = [*head, *(f["name"] for f in src), *tail]
        if [f["name"] for f in dst] != names:
            return None
        body = dst[len(head):len(dst) - len(tail)]
        if [_shape(f["type"]) for f in body] != [_shape(f["type"]) for f in src]:
            return None

        def part(fields: list[dict[str, Any]], suffix: str) -> Any:
            if not fields:
                return None
            return fastavro.parse_schema({"type": "record", "name": f"{target}_{suffix}",
                                          "namespace": self.raw[target].get("namespace"), "fields": fields})

        try:
            return part(dst[:len(head)], "head"), part(dst[len(dst) - len(tail):], "tail")
        except fastavro.schema.SchemaParseException:  # a named type defined elsewhere in the schema
            return None

    def splice(self, target: str, data: bytes, record: dict[str, Any], *, head: dict[str, Any] | None = None,
               tail: dict[str, Any] | None = None) -> bytes:
        """``target`` = ``head`` fields + the fields of the record ``data`` encodes + ``tail`` fields, encoded by
        writing only the new fields around ``data``'s body (Avro binary records are their fields, concatenated).

        ``record`` is ``data`` decoded: when the layouts do not line up (a schema changed), the whole record is
        encoded instead, so the bytes are always exactly what ``encode(target, {**head, **record, **tail})`` gives.
        """
        head, tail = head or {}, tail or {}
        source = self._by_fp.get(bytes(data[2:10])) if data[:2] == MAGIC else None
        layout = self._layout(target, tuple(head), source, tuple(tail)) if source else None
        if layout is None:
            return self.encode(target, {**head, **record, **tail})
        buf = io.BytesIO()
        buf.write(self._prefix[target])
        if layout[0] is not None:
            fastavro.schemaless_writer(buf, layout[0], head)
        buf.write(data[10:])
        if layout[1] is not None:
            fastavro.schemaless_writer(buf, layout[1], tail)
        return buf.getvalue()

    def fingerprint(self, name: str) -> bytes:
        return self._prefix[name][2:]

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._prefix[name])
        fastavro.schemaless_writer(buf, self.schemas[name], record)
        return buf.getvalue()

    def decode(self, data: bytes, expect: str | None = None) -> tuple[str, dict[str, Any]]:
        if len(data) < 10 or data[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoding")
        name = self._by_fp.get(bytes(data[2:10]))
        if name is None:
            raise DecodeError("unknown schema fingerprint " + bytes(data[2:10]).hex())
        if expect is not None and name != expect:
            raise DecodeError(f"expected {expect}, got {name}")
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[10:]), self.schemas[name], None)
        except Exception as exc:  # fastavro raises many types on corrupt bytes  # noqa: BLE001
            raise DecodeError(f"corrupt {name} body: {type(exc).__name__}") from exc
        return name, record  # type: ignore[return-value]


def _shape(t: Any) -> Any:
    """A field type as its binary encoding sees it: names, namespaces, docs, defaults and aliases dropped."""
    if isinstance(t, list):
        return [_shape(x) for x in t]
    if isinstance(t, dict):
        drop = {"name", "namespace", "doc", "default", "aliases", "order"}
        out = {k: _shape(v) for k, v in t.items() if k not in drop}
        if "fields" in t:
            out["fields"] = [{"type": _shape(f["type"])} for f in t["fields"]]
        return out
    return t


@cache
def codec() -> Codec:
    """The process-wide codec (schemas parsed once)."""
    return Codec(schemas_dir())
