"""Incremental product-feed parsing: byte chunks in, one row (or one row error) out at a time.

Formats: TSV and CSV (BOM, CRLF, quoted separators and quoted line breaks), XML (RSS 2.0 ``<item>`` or Atom
``<entry>`` with the ``g:`` namespace, through ``XMLPullParser`` with every finished item cleared and detached)
and JSON (a top-level array or JSON Lines, split without parsing the whole document). Memory is bounded by
one record, never by the file. A bad record yields a ``RowError`` naming file, row and column and the parse
goes on; only XML that stops being well-formed ends the file, because nothing after it can be trusted.
"""
from __future__ import annotations

import codecs
import csv
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import chain
from typing import Any, Literal

FeedFormat = Literal["tsv", "csv", "xml", "json"]
FORMATS: tuple[str, ...] = ("tsv", "csv", "xml", "json")

#: longest physical line (delimited) or JSON record we hold before declaring the record malformed
MAX_RECORD_CHARS = 4 * 1024 * 1024
_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class FeedRow:
    """One product record: attribute name (Google spelling, lower case) → text."""

    file: str
    row: int  # 1-based record number, header not counted (XML: item number; JSON: element number)
    fields: dict[str, str]
    line: int | None = None  # physical line the record starts on (delimited formats)

    def __post_init__(self) -> None:
        # stripped once here: a row's values are read ~50 times on the way to its commands
        object.__setattr__(self, "fields", {k: v.strip() if isinstance(v, str) else v for k, v in self.fields.items()})

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def span(self) -> int:
        """File rows this record covers (a grouped export record covers several)."""
        return 1

    def error(self, column: str | None, message: str, reason_code: str = "invalid_row") -> RowError:
        return RowError(self.file, self.row, column, message, reason_code, self.line)


@dataclass(frozen=True)
class RowError:
    """A record that cannot be used, and why: reported per row instead of failing the file."""

    file: str
    row: int
    column: str | None
    message: str
    reason_code: str = "invalid_row"
    line: int | None = None

    @property
    def span(self) -> int:
        """File rows it covers: none for row 0, the header."""
        return 1 if self.row else 0

    def __str__(self) -> str:
        where = f"{self.file}: row {self.row}" + (f" (line {self.line})" if self.line else "")
        return f"{where}, column {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


FeedItem = FeedRow | RowError


def detect_format(head: bytes, *, filename: str | None = None, content_type: str | None = None) -> FeedFormat:
    """The feed format from a name or media type if they say, else from the first bytes."""
    name = (filename or "").lower()
    for fmt, suffixes in (("tsv", (".tsv", ".tab", ".txt")), ("csv", (".csv",)), ("xml", (".xml", ".rss")),
                          ("json", (".json", ".jsonl", ".ndjson"))):
        if name.endswith(suffixes):
            return fmt  # type: ignore[return-value]
    media = (content_type or "").split(";")[0].strip().lower()
    for fmt, kinds in (("tsv", ("text/tab-separated-values",)), ("csv", ("text/csv",)),
                       ("xml", ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml")),
                       ("json", ("application/json", "application/x-ndjson", "application/jsonl"))):
        if media in kinds:
            return fmt  # type: ignore[return-value]
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("<"):
        return "xml"
    if text.startswith(("[", "{")):
        return "json"
    first_line = text.split("\n", 1)[0]
    return "tsv" if first_line.count("\t") >= first_line.count(",") and "\t" in first_line else "csv"


def iter_rows(chunks: Iterable[bytes], *, fmt: FeedFormat | None = None, file: str = "feed",
              filename: str | None = None, content_type: str | None = None,
              comment_prefix: str | None = None, aliases: Mapping[str, str] | None = None,
              on_header: Callable[[list[str]], None] | None = None) -> Iterator[FeedItem]:
    """Rows of a feed as they complete; ``chunks`` is read lazily, one chunk at a time.

    ``fmt`` None detects the format from ``filename``, ``content_type`` or the first non-empty chunk.
    Delimited only: ``comment_prefix`` skips lines starting with it, e.g. ``#`` notes above a header;
    ``aliases`` renames header names (lower case) and ``on_header`` is called with the header once read.
    """
    stream = iter(chunks)
    if fmt is None:
        # sniff on the first line (or 64 KiB): a TSV and a CSV header differ only in their separators
        head: list[bytes] = []
        for chunk in stream:
            head.append(chunk)
            if b"\n" in chunk or sum(map(len, head)) >= 65536:
                break
        fmt = detect_format(b"".join(head), filename=filename, content_type=content_type)
        stream = chain(head, stream)
    if fmt in ("tsv", "csv"):
        return _delimited_rows(stream, delimiter="\t" if fmt == "tsv" else ",", file=file,
                               comment_prefix=comment_prefix, aliases=aliases or {}, on_header=on_header)
    if fmt == "xml":
        return _xml_rows(stream, file=file)
    if fmt == "json":
        return _json_rows(stream, file=file)
    raise ValueError(f"unknown feed format {fmt!r}; known: {', '.join(FORMATS)}")


def export_rows(chunks: Iterable[bytes], *, file: str, required: Mapping[str, str], kind: str, reason_code: str,
                aliases: Mapping[str, str] | None = None) -> Iterator[FeedItem]:
    """The rows of a vendor's CSV export whose header must name the ``required`` columns (lower-case name →
    the vendor's spelling); without them, one ``RowError`` for row 0 — the header — and nothing else: a file
    of another kind (a Google feed on the Shopify route, an XML file) is named as such, not as N bad rows."""
    header: list[str] = []
    checked = False

    def header_error() -> RowError | None:
        missing = [name for key, name in required.items() if key not in header]
        if not missing:
            return None
        return RowError(file, 0, None, f"not a {kind}: no {', '.join(missing)} column in the header (found: "
                        f"{', '.join(name[:40] for name in header[:8])})", reason_code)

    for item in iter_rows(chunks, fmt="csv", file=file, aliases=aliases, on_header=header.extend):
        if not checked:
            error = header_error()
            if error is not None:
                yield error
                return
            checked = True
        yield item
    error = header_error() if header and not checked else None
    if error is not None:
        yield error


def _decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    # utf-8-sig drops a BOM; undecodable bytes become U+FFFD so the row that holds them can be reported
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


@dataclass
class _LineState:
    number: int = 0
    oversized: list[int] = field(default_factory=list)


def _lines(texts: Iterable[str], state: _LineState, comment_prefix: str | None) -> Iterator[str]:
    """Physical lines with their endings (CRLF stays for the csv module); over-long lines are dropped."""
    pending = ""
    for text in texts:
        parts = (pending + text).split("\n")
        pending = parts.pop()
        for part in parts:
            state.number += 1
            if comment_prefix and part.startswith(comment_prefix):
                yield "\n"  # keeps csv's line count in step with ours
                continue
            yield part + "\n"
        if len(pending) > MAX_RECORD_CHARS:
            # a line this long is not a product row: drop up to the next newline rather than hold the file
            state.oversized.append(state.number + 1)
            pending = ""
            for rest in texts:
                if "\n" in rest:
                    pending = rest.split("\n", 1)[1]
                    break
            state.number += 1
            yield "\n"
    if pending:
        state.number += 1
        if not (comment_prefix and pending.startswith(comment_prefix)):
            yield pending


def _header_name(raw: str) -> str:
    name = raw.strip().lower()
    return name[2:] if name.startswith("g:") else name


def _delimited_rows(chunks: Iterable[bytes], *, delimiter: str, file: str, comment_prefix: str | None,
                    aliases: Mapping[str, str], on_header: Callable[[list[str]], None] | None
                    ) -> Iterator[FeedItem]:
    state = _LineState()
    reader = csv.reader(_lines(_decoded(chunks), state, comment_prefix), delimiter=delimiter, quotechar='"',
                        skipinitialspace=False, strict=False)
    header: list[str] | None = None
    row = 0
    previous_line = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            yield RowError(file, row, None, f"malformed record: {exc}", "malformed_record", previous_line + 1)
            previous_line = reader.line_num
            continue
        start_line, previous_line = previous_line + 1, reader.line_num
        while state.oversized and state.oversized[0] <= previous_line:
            row += 1
            yield RowError(file, row, None, f"line longer than {MAX_RECORD_CHARS} characters",
                           "record_too_large", state.oversized.pop(0))
        if not record or all(not cell.strip() for cell in record):
            continue  # blank lines (and skipped comments) are not records
        if header is None:
            header = [aliases.get(name, name) for name in map(_header_name, record)]
            if on_header:
                on_header(header)
            continue
        row += 1
        if len(record) != len(header):
            yield RowError(file, row, None, f"{len(record)} fields, the header has {len(header)}",
                           "column_count", start_line)
            continue
        fields: dict[str, str] = {}
        bad = None
        for name, value in zip(header, record):
            if _REPLACEMENT in value and bad is None:
                bad = name
            # a repeated column (additional_image_link twice) keeps every value, comma-joined as in one cell
            fields[name] = f"{fields[name]},{value}" if fields.get(name) and value else (value or fields.get(name, ""))
        if bad is not None:
            yield RowError(file, row, bad, "bytes that are not UTF-8", "invalid_encoding", start_line)
            continue
        yield FeedRow(file, row, fields, start_line)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_text(elem: ET.Element) -> str:
    if len(elem):
        # a structured attribute (g:shipping): its parts colon-joined, as the text formats spell it
        return ":".join(_element_text(child) for child in elem)
    return (elem.text or "").strip()


def _xml_rows(chunks: Iterable[bytes], *, file: str) -> Iterator[FeedItem]:
    parser = ET.XMLPullParser(events=("start", "end"))
    stack: list[ET.Element] = []
    row = 0

    def drain() -> Iterator[FeedItem]:
        nonlocal row
        for event, elem in parser.read_events():
            if event == "start":
                stack.append(elem)  # type: ignore[arg-type]
                continue
            stack.pop()
            if _local(elem.tag) not in ("item", "entry") or not stack:  # type: ignore[union-attr]
                continue
            row += 1
            fields: dict[str, str] = {}
            plain: dict[str, str] = {}
            for child in elem:  # type: ignore[union-attr]
                name, value = _local(child.tag), _element_text(child)
                # g: attributes win over RSS/Atom core elements of the same name (title, link, description)
                target = fields if child.tag.startswith("{http://base.google.com/ns/") else plain
                target[name] = f"{target[name]},{value}" if target.get(name) and value else value or target.get(name, "")
            yield FeedRow(file, row, {**plain, **{k: v for k, v in fields.items() if v or k not in plain}})
            # the item is done: free it and detach it so the tree never grows with the file
            elem.clear()  # type: ignore[union-attr]
            stack[-1].remove(elem)  # type: ignore[arg-type]

    try:
        for chunk in chunks:
            parser.feed(chunk)
            yield from drain()
        parser.close()
        yield from drain()
    except ET.ParseError as exc:
        yield RowError(file, row + 1, None, f"XML is not well-formed: {exc}", "malformed_xml")


_JSON_SPECIAL = re.compile(r'[\[\]{}"]')
_JSON_IN_STRING = re.compile(r'["\\]')
#: wrapper keys whose list holds the products when a JSON feed is one object
_JSON_LIST_KEYS = ("products", "productInputs", "entries", "items", "resources")


class _JsonSplitter:
    """Cuts a JSON text into its row objects without parsing it: the elements of a top-level array, or each
    top-level object (JSON Lines). Strings are skipped so brackets inside them do not count."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.skip_escaped = False
        self.mode: str | None = None  # "array" | "objects"
        self.parts: list[str] = []
        self.size = 0
        self.recording = False
        self.oversized = False

    def feed(self, text: str) -> Iterator[str | None]:
        """Complete records; ``None`` for a record dropped as too large."""
        i, start = 0, 0
        if self.skip_escaped and text:
            i, self.skip_escaped = 1, False
        while i < len(text):
            if self.in_string:
                m = _JSON_IN_STRING.search(text, i)
                if m is None:
                    break
                if m.group() == "\\":
                    if m.end() >= len(text):
                        self.skip_escaped = True
                    i = m.end() + 1
                else:
                    self.in_string, i = False, m.end()
                continue
            if self.mode is None:
                stripped = text[i:].lstrip()
                if not stripped:
                    break
                self.mode = "array" if stripped[0] == "[" else "objects"
            m = _JSON_SPECIAL.search(text, i)
            if m is None:
                break
            c, j = m.group(), m.start()
            i = m.end()
            if c == '"':
                self.in_string = True
            elif c in "[{":
                if c == "{" and self.depth == (1 if self.mode == "array" else 0):
                    self.recording, self.parts, self.size, self.oversized, start = True, [], 0, False, j
                self.depth += 1
            else:
                self.depth -= 1
                if self.recording and self.depth == (1 if self.mode == "array" else 0):
                    self.recording = False
                    yield None if self.oversized else "".join(self.parts) + text[start:i]
        if self.recording and not self.oversized:
            piece = text[start:]
            self.size += len(piece)
            if self.size > MAX_RECORD_CHARS:
                self.oversized, self.parts = True, []
            else:
                self.parts.append(piece)


def _json_rows(chunks: Iterable[bytes], *, file: str) -> Iterator[FeedItem]:
    splitter = _JsonSplitter()
    row = 0
    for text in _decoded(chunks):
        for record in splitter.feed(text):
            if record is None:
                row += 1
                yield RowError(file, row, None, f"record larger than {MAX_RECORD_CHARS} characters",
                               "record_too_large")
                continue
            try:
                value = json.loads(record)
            except ValueError as exc:
                row += 1
                yield RowError(file, row, None, f"not valid JSON: {exc}", "invalid_json")
                continue
            for obj in _json_products(value):
                row += 1
                yield FeedRow(file, row, flatten_product(obj))
    if splitter.depth != 0 or splitter.in_string:
        yield RowError(file, row + 1, None, "JSON ends inside a value (truncated file?)", "truncated")


def _json_products(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        for key in _JSON_LIST_KEYS:
            if isinstance(value.get(key), list):
                return [v for v in value[key] if isinstance(v, dict)]
        return [value]
    return []


_JSON_NAMES = {"offerId": "id", "additionalImageLinks": "additional_image_link", "gtins": "gtin",
               "productTypes": "product_type", "imageLink": "image_link"}
_JSON_ENUMS = frozenset({"availability", "condition", "gender", "age_group", "identifier_exists", "adult"})
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _JSON_NAMES.get(name) or _CAMEL.sub("_", name).lower()


def _json_text(value: Any) -> str:
    if isinstance(value, dict):
        if "amountMicros" in value:  # Merchant API Price
            try:
                amount = Decimal(str(value["amountMicros"])) / Decimal(1_000_000)
            except InvalidOperation:
                return str(value["amountMicros"])
            return f"{format(amount.normalize(), 'f')} {value.get('currencyCode', '')}".strip()
        if "value" in value and "currency" in value:  # Content API Price
            return f"{value['value']} {value['currency']}"
        if "startTime" in value or "endTime" in value:  # Interval
            return f"{value.get('startTime', '')}/{value.get('endTime', '')}"
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, list):
        return ",".join(_json_text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def flatten_product(obj: dict[str, Any]) -> dict[str, str]:
    """A Merchant API ``ProductInput`` (or a flat JSON product) under the file spec's attribute names."""
    attributes = obj.get("productAttributes") or obj.get("attributes")
    flat: dict[str, Any] = {}
    if isinstance(attributes, dict):
        flat.update({k: v for k, v in obj.items() if k not in ("productAttributes", "attributes",
                                                                 "customAttributes")})
        flat.update(attributes)
    else:
        flat.update({k: v for k, v in obj.items() if k != "customAttributes"})
    customs = obj.get("customAttributes")
    for custom in customs if isinstance(customs, list) else []:  # a feed's wrong type is no crash
        if isinstance(custom, dict) and custom.get("name"):
            flat.setdefault(str(custom["name"]), custom.get("value"))
    out = {_snake(k): _json_text(v) for k, v in flat.items()}
    for name in _JSON_ENUMS.intersection(out):
        # Merchant API v1 enums are upper case (IN_STOCK); the file spec's values are lower case
        out[name] = out[name].lower()
    return out
