"""Errors classed by what the pipeline must do with them.

``Fatal`` → a failure record on ``integration.failures`` (dead letter), the stage moves on.
``Retriable`` → the stage blocks the partition and retries with backoff (a dependency outage).
``Skippable`` → counted and acknowledged, never dead-lettered.

Every concrete error names its failure ``class`` (contract §7) and a stable ``reason_code``.
"""
from __future__ import annotations

from typing import ClassVar


class IngestError(Exception):
    """Root of every error the pipeline classifies."""

    failure_class: ClassVar[str] = "processing"
    default_reason: ClassVar[str] = "processing_error"

    def __init__(self, message: str, *, reason_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code = reason_code or self.default_reason


class Fatal(IngestError):
    """The input can never succeed as it is: dead-letter it."""


class Retriable(IngestError):
    """A dependency is down or slow: block, back off, retry the same input."""


class Skippable(IngestError):
    """Nothing to do for this input: count it and move on."""


# --- concrete, fatal -------------------------------------------------------------------------
class InvalidSignature(Fatal):
    """Signature or credential check failed. The receiver answers 401 and never echoes the reason."""

    failure_class = "auth"
    default_reason = "invalid_signature"


class UnparseablePayload(Fatal):
    """The body is not what the provider's format says it is."""

    failure_class = "validation"
    default_reason = "unparseable_payload"


class UnmappedReference(Fatal):
    """A vendor id has no canonical id and the tenant does not auto-create."""

    failure_class = "mapping"
    default_reason = "unmapped_reference"

    def __init__(self, message: str, *, missing: list[tuple[str, str]] | None = None,
                 reason_code: str | None = None) -> None:
        super().__init__(message, reason_code=reason_code)
        self.missing = missing or []


class InvalidCommand(Fatal):
    """A canonical command broke an invariant (price, currency, unit, quantity, category)."""

    failure_class = "validation"
    default_reason = "invalid_command"


class InvalidField(InvalidCommand):
    """A command field breaks an invariant, reported where the source's position is still known (a feed row)."""

    def __init__(self, message: str, *, field: str, reason_code: str | None = None) -> None:
        super().__init__(message, reason_code=reason_code)
        self.field = field


class DuplicateDelivery(Fatal):
    """The same vendor event was already accepted under another rawId."""

    failure_class = "duplicate"
    default_reason = "duplicate_delivery"


class OutOfSequence(Fatal):
    """A sequenced source skipped or reordered a sequence number."""

    failure_class = "validation"
    default_reason = "out_of_sequence"


class SnapshotNotZeroed(Fatal):
    """A completed full stock snapshot whose omitted SKUs were not set to 0 (guard tripped, or stale)."""

    failure_class = "validation"
    default_reason = "snapshot_zeroing_guard"


class RawBodyMissing(Fatal):
    """The raw log row points at bytes object storage does not have (deleted by retention, or lost)."""

    failure_class = "processing"
    default_reason = "raw_body_missing"


class PoisonMessage(Fatal):
    """An internal-topic record that cannot be decoded."""

    failure_class = "processing"
    default_reason = "undecodable_record"


# --- concrete, skippable ---------------------------------------------------------------------
class UnsupportedEvent(Skippable):
    """An event type we do not handle: acknowledged and counted, not dead-lettered."""

    default_reason = "unsupported_event"


# --- concrete, retriable ---------------------------------------------------------------------
class DependencyUnavailable(Retriable):
    """PostgreSQL, S3 or the broker did not answer."""

    default_reason = "dependency_unavailable"
