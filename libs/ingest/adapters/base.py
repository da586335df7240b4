"""The provider adapter interface: sans-I/O, secrets through the constructor.

An adapter never touches the network, the disk, the clock or the environment. The receiver calls
``verify_signature`` on the exact raw bytes; the stages call ``parse``, ``dedupe_key``,
``mapping_keys`` and ``to_canonical_commands`` on the stored delivery, as often as they like.
"""
from __future__ import annotations

import abc
import codecs
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ingest.canonical.commands import CommandBase, CommandRecord
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import InvalidCommand, UnparseablePayload
from ingest.ids import uuid5_str

COMMAND_ID_NAMESPACE = uuid.UUID("0b8e7c1a-5d2f-5e4b-8c3d-9a6f1e2d4b70")


class Headers(Mapping[str, str]):
    """A case-insensitive, read-only header mapping that keeps the original names for display."""

    def __init__(self, items: Mapping[str, str] | list[tuple[str, str]] | None = None) -> None:
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items or [])
        self._original = dict(pairs)
        self._lower = {k.lower(): v for k, v in pairs}

    def __getitem__(self, key: str) -> str:
        return self._lower[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._original)

    def __len__(self) -> int:
        return len(self._original)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._lower.get(key.lower(), default)

    def original(self) -> dict[str, str]:
        return dict(self._original)


@dataclass(frozen=True)
class RawDelivery:
    """One stored delivery: the exact body, its headers, and where and when it arrived.

    ``family`` is the last path segment the vendor was told to use (``menu``, ``inventory``,
    ``store-status``, ``order-status``, ``stock``, ``catalog``, ``import``) or a provider-specific
    route name; adapters classify by the payload's own event type where it names one.
    """

    body: bytes
    headers: Headers
    raw_id: str
    tenant_id: str
    provider: str
    family: str
    received_at: datetime
    route: str = ""
    content_type: str = ""
    replay_id: str | None = None
    tenant: Any = None  # TenantSettings, when the stage has it

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def pulled(self) -> bool:
        """Fetched by the poller (route ``pull`` or ``pull:<endpoint>``), not pushed to the receiver."""
        return self.route == "pull" or self.route.startswith("pull:")


class SourceEvent(BaseModel):
    """What ``parse`` returns: the vendor payload, typed, with the classification stages need."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    event_type: str
    event_id: str | None = None
    occurred_at: datetime | None = None
    payload: Any = None
    delivery: RawDelivery


SourceT = TypeVar("SourceT", bound=SourceEvent)


@dataclass(frozen=True)
class AuthTraits:
    """What the contract suite may expect of a provider's auth scheme."""

    covers_body: bool  # a flipped body byte must fail verification (HMAC over the body)
    timestamped: bool = False  # a stale or future timestamp must fail
    unsigned: bool = False  # no credential at all (pulled documents, file imports behind admin auth)


@dataclass(frozen=True)
class Reply:
    """A provider-specific synchronous answer (handshakes, pings, registration) instead of the 202."""

    status: int
    body: Any = None  # dict → JSON; bytes/str → as is
    content_type: str = "application/json"
    enter_pipeline: bool = True  # False: answered without storing (e.g. an unsigned creation ping)


@dataclass(frozen=True)
class SnapshotPage:
    """One page of a stock snapshot: ``full`` means SKUs of the facility that no page lists are at 0."""

    snapshot_id: str
    as_of: datetime
    full: bool
    page: int
    page_count: int


@dataclass(frozen=True)
class FacilityStock:
    """The SKUs an event states stock for at one facility (``facility`` is the adapter's scope string), and
    the snapshot page it is, if it is one: what the resolver needs to know each facility's SKU set."""

    facility: str
    skus: tuple[str, ...]
    snapshot: SnapshotPage | None = None


class ProviderAdapter(abc.ABC, Generic[SourceT]):
    """One provider's format. Subclasses set ``provider``, ``kind`` and ``auth`` and implement the methods."""

    provider: ClassVar[str]
    kind: ClassVar[str]  # pos | erp | seller | partner
    auth: ClassVar[AuthTraits] = AuthTraits(covers_body=True)
    #: provider-specific paths under /v1/integrations/{kind}/{provider}/ a vendor cannot change (route → family)
    extra_routes: ClassVar[dict[str, str]] = {}

    def __init__(self, secrets: list[str] | None = None, *, options: Mapping[str, Any] | None = None,
                 now: Any = None) -> None:
        """``secrets``: the source's active secrets (two during a rotation); ``options``: per-source
        non-secret settings (timestamp tolerance, scheme choice); ``now``: a clock for timestamp checks,
        injected so the adapter itself stays pure."""
        self.secrets = list(secrets or [])
        self.options = dict(options or {})
        self._now = now or (lambda: datetime.now(timezone.utc))

    @abc.abstractmethod
    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Return ``None`` or raise ``InvalidSignature`` naming the reason (missing, stale, mismatch)."""

    def sign(self, body: bytes, *, secret: str, timestamp: int, msg_id: str = "msg_test") -> dict[str, str]:
        """The auth headers a sender would attach (tests, the load generator and ``pos-ingest send`` use it)."""
        raise NotImplementedError(f"{self.provider} has no sender-side signing")

    def preflight(self, family: str, headers: Mapping[str, str], raw_body: bytes) -> Reply | None:
        """Before auth: answer a handshake or ping that must not enter the pipeline (default: none)."""
        return None

    def query_reply(self, route: str, query: Mapping[str, str]) -> Reply | None:
        """A vendor's GET handshake on a provider-specific path (Uniware's ``/authToken``), answered from the
        source's secrets without entering the pipeline. None → 404. Default: none."""
        return None

    def accepted_reply(self, family: str, raw_body: bytes, *, raw_id: str, base_url: str) -> Reply | None:
        """After the raw log holds the payload: a vendor-specific answer instead of the standard 202."""
        return None

    def store_status_query(self, family: str, raw_body: bytes) -> str | None:
        """The vendor's store id when the payload asks for that store's current status (PetPooja's
        ``get_store_status``): the receiver reads it from the views and answers with ``status_reply``."""
        return None

    def status_reply(self, store_status: str | None, *, stale: bool = False) -> Reply:
        """The answer to a store-status query: ``store_status`` is the canonical status (OPEN, BUSY, CLOSED,
        PAUSED) or None when unknown; ``stale``: the views could not be read, this is the last known one."""
        raise NotImplementedError(f"{self.provider} asks for no store status")

    @abc.abstractmethod
    def parse(self, raw: RawDelivery) -> SourceT:
        """Typed payload, or ``UnparseablePayload``; an event type we do not handle → ``UnsupportedEvent``."""

    def dedupe_key(self, source: SourceT) -> str:
        """The provider's idempotency key: its event id where it has one, else the body's sha256."""
        if source.event_id:
            return f"{self.provider}:{source.event_id}"
        return f"{self.provider}:sha256:{source.delivery.sha256}"

    @abc.abstractmethod
    def mapping_keys(self, source: SourceT) -> frozenset[MappingKey]:
        """Every vendor id ``to_canonical_commands`` will resolve, so the resolver loads them in one query."""

    def sequence(self, source: SourceT) -> tuple[str, int] | None:
        """(scope, number) for sources that number their events per scope (the in-house WMS: per facility).
        The resolver reports gaps and refuses numbers at or below the last applied one. Default: none."""
        return None

    def facility_stock(self, source: SourceT) -> FacilityStock | None:
        """For sources whose full stock snapshots imply 0 for what they omit (the in-house WMS): the facility and
        SKUs the event stocks, with its snapshot page. The resolver keeps each facility's SKU set and decides
        the zeroing when a full snapshot's last page arrives. Default: none."""
        return None

    def zeroing_commands(self, source: SourceT, mapping_context: MappingContext, skus: Sequence[str], *,
                         start: int) -> list[CommandBase]:
        """The commands setting ``skus`` (the resolver's verdict for the full snapshot ``source`` completed) to
        0, numbered from ``start`` (after the source's own commands): pure and deterministic."""
        raise NotImplementedError(f"{self.provider} sends no full stock snapshots")

    def declared_mappings(self, source: SourceT) -> list[tuple[MappingKey, str | None]]:
        """Mappings the payload itself registers (a partner's outlet sync): key → canonical id, or None for a
        deterministic one. The resolver stores them before resolving. Default: none."""
        return []

    @abc.abstractmethod
    def to_canonical_commands(self, source: SourceT, mapping_context: MappingContext) -> list[CommandBase]:
        """Pure and deterministic: same source and context → same commands with the same ids."""


class CommandFactory:
    """Builds commands for one delivery with the common fields filled and deterministic ids.

    ``commandId`` = uuid5(ns, "rawId:n") for the n-th command of the delivery, so the same raw payload
    always yields the same ids, and a replay of it yields them again (the writer refuses repeats).
    """

    def __init__(self, source: SourceEvent, context: MappingContext, *,
                 merchant_id: str | None = None, store_id: str | None = None,
                 occurred_at: datetime | None = None, start: int = 0) -> None:
        self._d = source.delivery
        self._ctx = context
        self._n = start
        self.merchant_id = merchant_id
        self.store_id = store_id
        self.occurred_at = occurred_at or source.occurred_at or self._d.received_at

    def __call__(self, cls: type[CommandBase], **fields: Any) -> CommandBase:
        return self._validate(cls, self._common(fields))

    def record(self, cls: type[CommandBase], **fields: Any) -> CommandRecord | CommandBase:
        """The same command as its record (``to_record()``, ``command_type``) where ``CommandBase.record_of``
        vouches that pydantic would pass the values through unchanged; else the validated model (refused as
        ``__call__`` refuses it). For callers that only write the record: the feeds stage."""
        common = self._common(fields)
        record = cls.record_of(common)
        if record is None:
            return self._validate(cls, common)
        return CommandRecord(cls.command_type, record)

    def _common(self, fields: dict[str, Any]) -> dict[str, Any]:
        command_id = uuid5_str(COMMAND_ID_NAMESPACE, f"{self._d.raw_id}:{self._n}")
        self._n += 1
        common: dict[str, Any] = {
            "command_id": command_id,
            "tenant_id": self._d.tenant_id,
            "provider": self._d.provider,
            "raw_id": self._d.raw_id,
            "occurred_at": self.occurred_at,
            "received_at": self._d.received_at,
            "merchant_id": self.merchant_id,
            "store_id": self.store_id,
        }
        common.update(fields)
        return common

    @staticmethod
    def _validate(cls: type[CommandBase], common: dict[str, Any]) -> CommandBase:
        try:
            return cls.model_validate(common)  # what cls(**common) does, without repacking the keywords
        except ValidationError as exc:
            # a payload without a value the command requires (a declarative path that found nothing)
            err = exc.errors()[0]
            raise InvalidCommand(f"{cls.__name__}: {'.'.join(map(str, err.get('loc', ())))}: {err.get('msg')}",
                                 reason_code="invalid_command_fields") from exc


def first_error(exc: Any) -> str:
    """A pydantic ValidationError's first error as ``loc.path: message`` (what UnparseablePayload says)."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``dict(pairs)`` in C; only when it comes out short is there a duplicate to look for and name."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: ``json.loads(text, **kw)`` builds a decoder (and its scanner) per call; one shared decoder does the same work
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_no_dupes, parse_constant=_no_constants)


def load_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys; anything else is UnparseablePayload."""
    try:
        # raw.decode("utf-8-sig") without the Python-level codec: the same BOM strip, the same errors
        text = (raw[3:] if raw[:3] == codecs.BOM_UTF8 else raw).decode("utf-8")
        if text.startswith("\ufeff"):  # a second BOM: json.loads refuses it before decoding anything
            return json.loads(text)
        return _STRICT_JSON.decode(text)
    except RecursionError as exc:
        raise UnparseablePayload("JSON nested too deeply", reason_code="too_deep") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnparseablePayload(f"not valid JSON: {str(exc)[:200]}", reason_code="invalid_json") from exc


@dataclass(frozen=True)
class ProductFeed:
    """A provider's bulk product file (``POST …/{provider}/import``), sans-I/O like the adapters.

    ``records(chunks, file=…, filename=…, content_type=…)`` reads byte chunks lazily and yields records as
    they complete — each with ``file``, ``row`` (first file row it covers), ``line`` and ``span`` (how many
    file rows it covers) — or ``RowError``s; memory is bounded by one record. ``keys(records)`` names every
    mapping key a batch of records resolves. ``commands(record, make, ctx, currency=…, store_id=…,
    seen_items=…)`` turns one record into a ``FeedBatch`` (commands, row errors, items carried) and never
    raises for bad values; at most ``ROW_ID_STRIDE`` commands per file row, as command ids are per row.
    """

    records: Callable[..., Iterator[Any]]
    keys: Callable[[Sequence[Any]], frozenset[MappingKey]]
    commands: Callable[..., Any]
