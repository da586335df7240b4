"""Full stock snapshots: each facility's SKU set, page progress, and the zeroing a completed snapshot implies.

A full snapshot sets every SKU the facility has been seen stocking and that no page lists to 0, once every page
1..page_count of its ``snapshot_id`` is in (any order; a redelivered page changes nothing). The page that
completes it carries the zeroing; a re-run or replay of that page carries the same verdict again (the verdict is
stored, so the command ids repeat and the writer refuses them). Not zeroed, and reported as a ``validation``
failure next to the snapshot's own commands: a zeroing above the source's max ratio of the known SKUs
(``snapshot_zeroing_guard``) and a snapshot older than the newest completed one (``snapshot_stale``).
One read and one write per batch, and none for a batch without stock events.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from ingest.adapters.base import RawDelivery, SourceEvent
from ingest.errors import SnapshotNotZeroed
from ingest.kafka.results import Failure
from ingest.pipeline import adapter_for

Facility = tuple[str, str, str]  # tenant, provider, the adapter's facility scope
SnapshotKey = tuple[str, str, str, str]  # facility + snapshot_id

#: source option (``sources add --options``): the largest share of a facility's known SKUs one snapshot may zero
RATIO_OPTION = "snapshot_max_zero_ratio"
DEFAULT_MAX_ZERO_RATIO = 0.5


@dataclass(frozen=True)
class SnapshotProgress:
    as_of: datetime
    page_count: int
    pages: frozenset[int] = frozenset()
    listed: frozenset[str] = frozenset()
    completed_by: str | None = None  # rawId of the page that completed it
    verdict: str | None = None  # zeroed | guarded | stale
    zeroed: tuple[str, ...] = ()
    would_zero: int = 0
    known: int = 0


@dataclass
class FacilityState:
    skus: set[str] = field(default_factory=set)
    newest: datetime | None = None  # as_of of the newest completed snapshot
    max_zero_ratio: float = DEFAULT_MAX_ZERO_RATIO


@dataclass
class StockState:
    facilities: dict[Facility, FacilityState] = field(default_factory=dict)
    snapshots: dict[SnapshotKey, SnapshotProgress] = field(default_factory=dict)


class StockRepository(Protocol):
    async def stock_state(self, snapshots: list[SnapshotKey]) -> StockState:
        """These snapshots' progress and, for their facilities, the SKU set, the newest completed snapshot's
        ``as_of`` and the source's max zeroing ratio: one read."""

    async def save_stock(self, seen: dict[Facility, set[str]],
                         snapshots: dict[SnapshotKey, SnapshotProgress]) -> None:
        """Add the SKUs to the facilities' sets and merge the snapshots' progress (pages and listed SKUs are
        unions; a completion is never overwritten): one statement."""


@dataclass(frozen=True)
class Zeroing:
    """What a snapshot page's input carries: the SKUs to set to 0 and/or the report of a zeroing not done."""

    skus: tuple[str, ...] = ()
    failure: Failure | None = None


def max_zero_ratio(options: dict[str, object]) -> float:
    try:
        return float(options.get(RATIO_OPTION, DEFAULT_MAX_ZERO_RATIO))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_MAX_ZERO_RATIO


def add_page(progress: SnapshotProgress, page: int, listed: tuple[str, ...]) -> SnapshotProgress:
    return replace(progress, pages=progress.pages | {page}, listed=progress.listed | set(listed))


def is_complete(progress: SnapshotProgress) -> bool:
    return progress.pages >= set(range(1, progress.page_count + 1))


def complete(progress: SnapshotProgress, facility: FacilityState, raw_id: str) -> SnapshotProgress:
    """The verdict of a snapshot whose last page just arrived, against the facility's SKU set as it is now."""
    missing = tuple(sorted(facility.skus - progress.listed))
    done = replace(progress, completed_by=raw_id, listed=frozenset(), known=len(facility.skus),
                   would_zero=len(missing))
    if facility.newest is not None and progress.as_of < facility.newest:
        return replace(done, verdict="stale")
    if len(missing) > facility.max_zero_ratio * len(facility.skus):
        return replace(done, verdict="guarded")
    return replace(done, verdict="zeroed", zeroed=missing)


def zeroing_of(key: SnapshotKey, p: SnapshotProgress, ratio: float) -> Zeroing:
    if p.verdict == "zeroed":
        return Zeroing(p.zeroed)
    facility, snapshot_id = key[2], key[3]
    details = {"facility": facility, "snapshotId": snapshot_id, "asOf": p.as_of.isoformat(),
               "wouldZero": str(p.would_zero), "knownSkus": str(p.known)}
    if p.verdict == "guarded":
        message = (f"{facility}: full snapshot {snapshot_id} would set {p.would_zero} of {p.known} known SKUs "
                   f"to 0, more than the max ratio {ratio:g}: nothing zeroed")
        details["maxZeroRatio"] = f"{ratio:g}"
        return Zeroing(failure=Failure(SnapshotNotZeroed(message), details=details))
    message = (f"{facility}: full snapshot {snapshot_id} as of {p.as_of.isoformat()} is older than the newest "
               f"one applied: nothing zeroed")
    return Zeroing(failure=Failure(SnapshotNotZeroed(message, reason_code="snapshot_stale"), details=details))


async def snapshot_verdicts(parsed: dict[int, tuple[RawDelivery, SourceEvent]],
                            repo: StockRepository) -> dict[int, Zeroing]:
    """Facility SKU sets and snapshot progress advanced in input order; the zeroing each input carries."""
    stocked = {}
    for n, (d, source) in sorted(parsed.items()):
        fs = adapter_for(d.provider).facility_stock(source)
        if fs is not None:
            stocked[n] = (d, (d.tenant_id, d.provider, fs.facility), fs)
    if not stocked:
        return {}
    wanted = sorted({(*fac, fs.snapshot.snapshot_id) for _, fac, fs in stocked.values()
                     if fs.snapshot is not None and fs.snapshot.full})
    state = await repo.stock_state(wanted) if wanted else StockState()
    seen: dict[Facility, set[str]] = {}
    changed: dict[SnapshotKey, SnapshotProgress] = {}
    out: dict[int, Zeroing] = {}
    for n, (d, fac, fs) in stocked.items():
        seen.setdefault(fac, set()).update(fs.skus)
        facility = state.facilities.setdefault(fac, FacilityState())
        facility.skus.update(fs.skus)
        page = fs.snapshot
        if page is None or not page.full:
            continue  # a partial snapshot never zeroes
        key = (*fac, page.snapshot_id)
        progress = state.snapshots.get(key) or SnapshotProgress(page.as_of, page.page_count)
        if progress.completed_by is None:
            progress = add_page(progress, page.page, fs.skus)
            if is_complete(progress):
                progress = complete(progress, facility, d.raw_id)
                if progress.verdict != "stale":
                    facility.newest = max(facility.newest or progress.as_of, progress.as_of)
            state.snapshots[key] = changed[key] = progress
        if progress.completed_by == d.raw_id:  # completed now, or by this very payload before (re-run, replay)
            out[n] = zeroing_of(key, progress, facility.max_zero_ratio)
    await repo.save_stock(seen, changed)
    return out
