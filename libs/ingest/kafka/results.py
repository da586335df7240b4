"""What a stage handler returns for each input, and what it receives."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ingest.errors import IngestError
from ingest.ids import uuid5_str

FAILURE_NAMESPACE = uuid.UUID("4a3c1f7e-2b9d-5c8e-a1f0-6d5e4c3b2a19")


@dataclass
class Input:
    """One decoded input record, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    schema: str
    record: dict[str, Any]
    #: the encoded record as read: a stage that only adds fields writes them around it (``Codec.splice``)
    value: bytes = b""

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def raw_id(self) -> str | None:
        return self.record.get("rawId") or self.headers.get("raw-id")

    @property
    def tenant_id(self) -> str | None:
        return self.record.get("tenantId") or self.headers.get("tenant-id")

    @property
    def provider(self) -> str:
        return str(self.record.get("provider") or self.headers.get("provider") or "unknown")

    @property
    def replay_id(self) -> str | None:
        return self.record.get("replayId")


@dataclass
class Output:
    """A record to produce in the stage's transaction. ``topic`` is the logical name (no prefix)."""

    topic: str
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    error: IngestError
    command_id: str | None = None
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    """The outcome of one input: outputs, failures (a payload may have both), or a skip."""

    outputs: list[Output] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: str | None = None
    #: written to integration.outcomes: the payload ended here without failing
    outcome: dict[str, Any] | None = None
    #: metric label: forwarded | failed | skipped | duplicate | redelivered | processed
    label: str = "forwarded"

    @classmethod
    def fail(cls, error: IngestError, **details: str) -> Result:
        label = "duplicate" if error.failure_class == "duplicate" else "failed"
        return cls(failures=[Failure(error, details=details)], label=label)


def failure_record(inp: Input | None, failure: Failure, *, stage: str, index: int, origin: tuple[str, int, int] | None,
                   raw: dict[str, Any] | None = None, attempt: int = 0) -> dict[str, Any]:
    """The FailureRecord (contract §7). Its id is deterministic per origin, so re-recording is idempotent."""
    err = failure.error
    raw = raw if raw is not None else (inp.record if inp else {})
    origin_text = f"{origin[0]}/{origin[1]}/{origin[2]}" if origin else str(uuid.uuid4())
    details = dict(failure.details)
    missing = getattr(err, "missing", None)
    if missing:
        details.setdefault("missing", ",".join(f"{e}:{x}" for e, x in missing))
    cause = err.__cause__
    return {
        "failureId": uuid5_str(FAILURE_NAMESPACE, f"{origin_text}:{stage}:{index}"),
        "class": err.failure_class, "stage": stage, "reasonCode": err.reason_code, "message": err.message[:2000],
        "rawId": raw.get("rawId") or (inp.raw_id if inp else None),
        "tenantId": raw.get("tenantId") or (inp.tenant_id if inp else None),
        "provider": raw.get("provider") or (inp.provider if inp else None),
        "occurredAt": datetime.now(timezone.utc), "attempt": attempt,
        "originTopic": origin[0] if origin else None, "originPartition": origin[1] if origin else None,
        "originOffset": origin[2] if origin else None, "replayId": raw.get("replayId"),
        "commandId": failure.command_id,
        "exception": f"{type(cause).__name__}: {str(cause)[:300]}" if cause else type(err).__name__,
        "details": {k: str(v)[:1000] for k, v in details.items()},
    }


def outcome_record(inp: Input, *, stage: str, outcome: str, reason: str = "", event_type: str = "",
                   command_ids: list[str] | None = None, command_types: list[str] | None = None,
                   topics: list[str] | None = None, duplicate_command_ids: list[str] | None = None) -> dict[str, Any]:
    return {"rawId": inp.raw_id, "tenantId": inp.tenant_id or "", "provider": inp.provider, "stage": stage,
            "outcome": outcome, "replayId": inp.replay_id, "eventType": event_type,
            "commandIds": command_ids or [], "commandTypes": command_types or [], "topics": topics or [],
            "duplicateCommandIds": duplicate_command_ids or [], "reason": reason,
            "occurredAt": datetime.now(timezone.utc)}
