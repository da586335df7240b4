"""Avro single-object encoding (``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint + body).

Every ``.avsc`` under ``schemas/`` is parsed once; records are looked up by their short name
(``RawReceived``, ``UpdatePrice``, ``StockLevelUpdated`` …) to encode, and by fingerprint to decode, so a
topic may carry several record types (``catalog.commands`` does) and any reader can decode it.
"""
from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
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
        self._writers: dict[str, Writer | None] = {}
        self._readers: dict[str, Reader | None] = {}
        for path in sorted(directory.rglob("*.avsc")):
            schema = json.loads(path.read_text())
            parsed = fastavro.parse_schema(schema, _write_hint=True)
            name = schema["name"]
            if name in self.schemas:
                raise ValueError(f"two schemas named {name}")
            fp = crc64_avro(to_parsing_canonical_form(parsed).encode()).to_bytes(8, "little")
            self.schemas[name] = parsed
            self.raw[name] = schema
            self._writers[name] = compile_writer(schema)
            self._readers[name] = compile_reader(schema)
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
            """(fastavro's parsed schema, the compiled writer or None) of these fields as a record."""
            if not fields:
                return None
            schema = {"type": "record", "name": f"{target}_{suffix}", "namespace": self.raw[target].get("namespace"),
                      "fields": fields}
            return fastavro.parse_schema(schema), compile_writer(schema)

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
        out = bytearray(self._prefix[target])
        if layout[0] is not None:
            _write_part(out, layout[0], head)
        out += memoryview(data)[10:]
        if layout[1] is not None:
            _write_part(out, layout[1], tail)
        return bytes(out)

    def fingerprint(self, name: str) -> bytes:
        return self._prefix[name][2:]

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """The compiled writer when it covers ``record`` (byte-identical to fastavro, ~2x faster), else fastavro."""
        writer = self._writers[name]
        if writer is not None:
            out = bytearray(self._prefix[name])
            try:
                writer(out, record)
                return bytes(out)
            except Exception:  # noqa: BLE001 — a value the writer does not cover: fastavro's to encode or reject
                pass
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
        reader = self._readers[name]
        if reader is not None:
            try:
                return name, reader(data, 10)
            except Exception:  # noqa: BLE001 — bytes the reader does not take as they are: fastavro decides
                pass
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[10:]), self.schemas[name], None)
        except Exception as exc:  # fastavro raises many types on corrupt bytes  # noqa: BLE001
            raise DecodeError(f"corrupt {name} body: {type(exc).__name__}") from exc
        return name, record  # type: ignore[return-value]


def _write_part(out: bytearray, part: tuple[Any, Writer | None], record: dict[str, Any]) -> None:
    """``record`` as the fields of a spliced part: its compiled writer, or fastavro for what that does not cover."""
    parsed, writer = part
    if writer is not None:
        mark = len(out)
        try:
            writer(out, record)
            return
        except Exception:  # noqa: BLE001 — fastavro's to encode or reject, as in Codec.encode
            del out[mark:]
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    out += buf.getvalue()


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


Writer = Callable[[bytearray, dict[str, Any]], None]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT_RANGE = {"int": (-(1 << 31), (1 << 31) - 1), "long": (-(1 << 63), (1 << 63) - 1)}


class _Uncovered(Exception):
    """A value of a type the compiled writer leaves to fastavro (bool as long, tuple as array, naive datetime …)."""


def _varint(n: int) -> bytes:
    """Avro's zig-zag varint of a 64-bit ``n``."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SIZES = [_varint(n) for n in range(4096)]  # lengths, block counts, small ints: one list index, no loop
_UTC_TIMESTAMPS: dict[datetime, bytes] = {}


def _timestamp(value: datetime) -> bytes:
    """An aware datetime as timestamp-micros, as fastavro computes it (``value - epoch``).

    UTC values are memoised: a webhook's ``receivedAt`` (and often its ``occurredAt``) is written in every
    command and again in its envelopes, and the 8-byte varint loop is the costly part. Only UTC: two datetimes
    of one zone that differ only in ``fold`` compare (and hash) equal but are an hour apart.
    """
    utc = value.tzinfo is timezone.utc
    if utc and value in _UTC_TIMESTAMPS:
        return _UTC_TIMESTAMPS[value]
    delta = value - _EPOCH
    data = _varint((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if utc:
        if len(_UTC_TIMESTAMPS) >= 4096:
            _UTC_TIMESTAMPS.clear()
        _UTC_TIMESTAMPS[value] = data
    return data


def compile_writer(schema: dict[str, Any]) -> Writer | None:
    """A Python function that writes ``schema``'s records exactly as ``fastavro.schemaless_writer`` does, or None
    when the schema uses a type it does not know (then fastavro writes every record).

    fastavro walks the parsed schema for every record; the generated code is the walk unrolled once. It covers
    the exact Python types the pipeline produces (str, bytes, int, bool, aware datetime, dict, list, None) and
    raises ``_Uncovered`` (or KeyError for a field left to its default) for anything else, so ``Codec.encode``
    hands those records to fastavro: what it accepts, rejects or coerces stays its decision.
    tests/unit/test_codec_writer.py pins the bytes to fastavro's.
    """
    lines: list[str] = []
    names = itertools.count()

    def emit(t: Any, expr: str, depth: int) -> None:
        pad = "    " * depth
        kind = t.get("type") if isinstance(t, dict) else None
        if isinstance(t, str) and t in ("string", "bytes"):
            data = f"b{next(names)}"
            if t == "string":
                lines.append(f"{pad}if type({expr}) is not str: raise Uncovered")
                lines.append(f"{pad}{data} = {expr}.encode()")
            else:
                lines.append(f"{pad}if type({expr}) is not bytes: raise Uncovered")
                lines.append(f"{pad}{data} = {expr}")
            lines.append(f"{pad}out += SIZES[len({data})] if len({data}) < 4096 else varint(len({data}))")
            lines.append(f"{pad}out += {data}")
        elif isinstance(t, str) and t in _INT_RANGE:
            low, high = _INT_RANGE[t]
            lines.append(f"{pad}if type({expr}) is not int or not {low} <= {expr} <= {high}: raise Uncovered")
            lines.append(f"{pad}out += SIZES[{expr}] if 0 <= {expr} < 4096 else varint({expr})")
        elif t == "boolean":
            lines.append(f"{pad}if type({expr}) is not bool: raise Uncovered")
            lines.append(f"{pad}out += b'\\x01' if {expr} else b'\\x00'")
        elif kind == "long" and t.get("logicalType") == "timestamp-micros" and len(t) == 2:
            lines.append(f"{pad}if type({expr}) is not datetime or {expr}.tzinfo is None: raise Uncovered")
            lines.append(f"{pad}out += timestamp({expr})")
        elif isinstance(t, list) and len(t) == 2 and t[0] == "null" and t[1] != "null":
            lines.append(f"{pad}if {expr} is None:")
            lines.append(f"{pad}    out += b'\\x00'")
            lines.append(f"{pad}else:")
            lines.append(f"{pad}    out += b'\\x02'")
            emit(t[1], expr, depth + 1)
        elif kind in ("map", "array") and len(t) == 2:
            block, key, item = f"c{next(names)}", f"k{next(names)}", f"v{next(names)}"
            lines.append(f"{pad}{block} = {expr}")
            lines.append(f"{pad}if type({block}) is not {'dict' if kind == 'map' else 'list'}: raise Uncovered")
            lines.append(f"{pad}if {block}:")
            lines.append(f"{pad}    out += SIZES[len({block})] if len({block}) < 4096 else varint(len({block}))")
            if kind == "map":
                lines.append(f"{pad}    for {key}, {item} in {block}.items():")
                emit("string", key, depth + 2)
                emit(t["values"], item, depth + 2)
            else:
                lines.append(f"{pad}    for {item} in {block}:")
                emit(t["items"], item, depth + 2)
            lines.append(f"{pad}out += b'\\x00'")
        elif kind == "record":
            rec = f"r{next(names)}"
            lines.append(f"{pad}{rec} = {expr}")
            lines.append(f"{pad}if type({rec}) is not dict: raise Uncovered")
            for f in t["fields"]:
                value = f"f{next(names)}"
                lines.append(f"{pad}{value} = {rec}[{f['name']!r}]")
                emit(f["type"], value, depth)
        else:
            raise _Uncovered(repr(t))

    return _generated(emit, schema, lines, "write", "out, record", "",
                      {"SIZES": _SIZES, "varint": _varint, "timestamp": _timestamp, "datetime": datetime})


def _generated(emit: Callable[[Any, str, int], None], schema: dict[str, Any], lines: list[str], name: str,
               params: str, tail: str, names: dict[str, Any]) -> Any:
    """The function ``name(params)``: the lines ``emit`` writes for ``schema``, then ``tail``, with ``names`` in
    scope; None when ``emit`` meets a type it does not know."""
    try:
        emit(schema, "record", 1)
    except _Uncovered:
        return None
    namespace: dict[str, Any] = {"Uncovered": _Uncovered, **names}
    exec("\n".join([f"def {name}({params}):", *lines, tail]) + "\n", namespace)  # noqa: S102 — our own schemas
    return namespace[name]


Reader = Callable[[bytes, int], dict[str, Any]]


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """A varint of more than one byte at ``pos`` (not yet zig-zag decoded) and the position after it.

    At most 10 bytes and 64 bits: anything longer is corrupt, and fastavro (which reads into a 64-bit integer)
    is left to decide what it is."""
    n = data[pos] & 0x7F
    shift = 7
    pos += 1
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Uncovered("varint longer than 10 bytes")
    if n >> 64:
        raise _Uncovered("varint over 64 bits")
    return n, pos


#: the datetimes of timestamp-micros values recently read, by their 8-byte varint (every one since 1970-01-14
#: and before 2540 is 8 bytes long; others are read, not memoised)
_TIMES8: dict[bytes, datetime] = {}


def _from_micros(micros: int) -> datetime:
    """timestamp-micros as fastavro reads it (``epoch + timedelta``), memoised when its varint has 8 bytes: a
    webhook's ``receivedAt`` is in each of its commands and envelopes."""
    value = _EPOCH + timedelta(microseconds=micros)
    data = _varint(micros)
    if len(data) == 8:
        if len(_TIMES8) >= 4096:
            _TIMES8.clear()
        _TIMES8[data] = value
    return value


def compile_reader(schema: dict[str, Any]) -> Reader | None:
    """A Python function that reads ``schema``'s records as ``fastavro.schemaless_reader`` does (same values, same
    types, fields in schema order), from ``data`` at ``pos``; or None when the schema uses a type it does not
    know (then fastavro reads every record).

    fastavro's reader walks the parsed schema for every record (about 20 µs for a catalog command, its
    timestamps included); the generated code is that walk unrolled once, one-byte varints inline. Bytes it
    does not take exactly as they are (a truncated body, a union index or a varint written in more bytes than
    needed, a bad UTF-8 string) raise, and ``Codec.decode`` hands them to fastavro: what corrupt input gives
    stays fastavro's decision. tests/unit/test_codec_reader.py pins the values to fastavro's.
    """
    lines: list[str] = []
    names = itertools.count()

    def long(target: str, pad: str, zigzag: bool = True) -> None:
        lines.append(f"{pad}{target} = data[pos]")
        lines.append(f"{pad}if {target} < 0x80:")
        lines.append(f"{pad}    pos += 1")
        lines.append(f"{pad}else:")
        lines.append(f"{pad}    {target}, pos = uvarint(data, pos)")
        if zigzag:
            lines.append(f"{pad}{target} = ({target} >> 1) ^ -({target} & 1)")

    def emit(t: Any, target: str, depth: int) -> None:
        pad = "    " * depth
        kind = t.get("type") if isinstance(t, dict) else None
        if isinstance(t, str) and t in ("string", "bytes"):
            size, end = f"n{next(names)}", f"e{next(names)}"
            long(size, pad, zigzag=False)
            lines.append(f"{pad}if {size} & 1: raise Uncovered")  # a negative length
            lines.append(f"{pad}{end} = pos + ({size} >> 1)")
            lines.append(f"{pad}if {end} > size: raise Uncovered")
            lines.append(f"{pad}{target} = data[pos:{end}]{'.decode()' if t == 'string' else ''}")
            lines.append(f"{pad}pos = {end}")
        elif isinstance(t, str) and t in _INT_RANGE:
            long(target, pad)
            low, high = _INT_RANGE[t]
            lines.append(f"{pad}if not {low} <= {target} <= {high}: raise Uncovered")
        elif t == "boolean":
            lines.append(f"{pad}{target} = data[pos] != 0")
            lines.append(f"{pad}pos += 1")
        elif kind == "long" and t.get("logicalType") == "timestamp-micros" and len(t) == 2:
            # this era's timestamps are 8-byte varints: one slice and one lookup when seen before
            lines.append(f"{pad}{target} = TIMES8.get(data[pos:pos + 8])")
            lines.append(f"{pad}if {target} is None:")
            long(target, pad + "    ")
            lines.append(f"{pad}    {target} = from_micros({target})")
            lines.append(f"{pad}else:")
            lines.append(f"{pad}    pos += 8")
        elif isinstance(t, list) and len(t) == 2 and t[0] == "null" and t[1] != "null":
            lines.append(f"{pad}if data[pos] == 0:")
            lines.append(f"{pad}    pos += 1")
            lines.append(f"{pad}    {target} = None")
            lines.append(f"{pad}elif data[pos] == 2:")
            lines.append(f"{pad}    pos += 1")
            emit(t[1], target, depth + 1)
            lines.append(f"{pad}else:")
            lines.append(f"{pad}    raise Uncovered")
        elif kind in ("map", "array") and len(t) == 2:
            count, key, item, skip = (f"{c}{next(names)}" for c in "cksx")
            lines.append(f"{pad}{target} = {{}}" if kind == "map" else f"{pad}{target} = []")
            lines.append(f"{pad}while True:")
            long(count, pad + "    ")
            lines.append(f"{pad}    if {count} == 0:")
            lines.append(f"{pad}        break")
            lines.append(f"{pad}    if {count} < 0:")  # a block that gives its size in bytes too
            lines.append(f"{pad}        {count} = -{count}")
            long(skip, pad + "        ")
            lines.append(f"{pad}    for _ in range({count}):")
            if kind == "map":
                emit("string", key, depth + 2)
                emit(t["values"], item, depth + 2)
                lines.append(f"{pad}        {target}[{key}] = {item}")
            else:
                emit(t["items"], item, depth + 2)
                lines.append(f"{pad}        {target}.append({item})")
        elif kind == "record":
            values = []
            for f in t["fields"]:
                value = f"f{next(names)}"
                emit(f["type"], value, depth)
                values.append(f"{f['name']!r}: {value}")
            lines.append(f"{pad}{target} = {{{', '.join(values)}}}")
        else:
            raise _Uncovered(repr(t))

    lines.insert(0, "    size = len(data)")
    return _generated(emit, schema, lines, "read", "data, pos", "    return record",
                      {"uvarint": _uvarint, "from_micros": _from_micros, "TIMES8": _TIMES8})


@cache
def codec() -> Codec:
    """The process-wide codec (schemas parsed once)."""
    return Codec(schemas_dir())
