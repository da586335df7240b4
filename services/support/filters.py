"""The payload filter: one definition for the log, the estimate and the replay match set (pure SQL building)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any

CLASSES = ("auth", "mapping", "validation", "processing", "duplicate")
STATUSES = ("accepted", "duplicate", "failed", "processed", "skipped")


class FilterError(ValueError):
    """A filter a person typed that cannot be applied; the message says which part."""


def parse_time(text: str) -> datetime:
    """RFC 3339 (``Z`` or offset), a date, or a relative ``-2h`` / ``30m`` / ``7d`` before now."""
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    bare = text.lstrip("-")
    if bare[:-1].isdigit() and bare[-1:] in units:
        return datetime.now(timezone.utc) - timedelta(seconds=int(bare[:-1]) * units[bare[-1]])
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"not a time: {text!r} (RFC 3339, a date, or -2h/30m/7d)") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def containment(path: str, value: Any) -> Any:
    """``data.items[].sku`` + ``X`` → ``{"data": {"items": [{"sku": "X"}]}}`` (for ``@>`` on a GIN index)."""
    parts = [p for p in path.strip().lstrip("$").strip(".").split(".") if p]
    if not parts:
        raise FilterError("empty JSON path")
    doc = value
    for part in reversed(parts):
        is_array = part.endswith("[]")
        name = part[:-2] if is_array else part
        if is_array:
            doc = [doc]
        doc = {name: doc} if name else doc
    return doc


def field_candidates(value: str) -> list[Any]:
    """``42`` matches the string "42" and the number 42; ``true``/``null`` their JSON values too."""
    out: list[Any] = [value]
    try:
        parsed = json.loads(value)
    except ValueError:
        return out
    if not isinstance(parsed, (dict, list, str)) and parsed not in out:
        out.append(parsed)
    return out


@dataclass(frozen=True)
class PayloadFilter:
    tenant: str | None = None
    provider: str | None = None
    status: str | None = None
    cls: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    raw_id: str | None = None
    external_id: str | None = None
    field: str | None = None
    value: str | None = None
    unresolved: bool = False

    @classmethod
    def from_query(cls, q: Mapping[str, Any]) -> PayloadFilter:
        def get(name: str) -> str | None:
            v = q.get(name)
            return str(v).strip() if v not in (None, "") and str(v).strip() else None

        status, klass = get("status"), get("class") or get("cls")
        if status and status not in STATUSES:
            raise FilterError(f"status must be one of {', '.join(STATUSES)}")
        if klass and klass not in CLASSES:
            raise FilterError(f"class must be one of {', '.join(CLASSES)}")
        raw_id = get("rawId") or get("raw_id")
        if raw_id:
            try:
                raw_id = str(uuid.UUID(raw_id))
            except ValueError as exc:
                raise FilterError(f"rawId is not a UUID: {raw_id!r}") from exc
        field, value = get("field"), q.get("value")
        if field and "=" in field and value in (None, ""):
            field, value = field.split("=", 1)
        if field and value in (None, ""):
            raise FilterError("a field search needs both a JSON path and a value")
        since, until = get("since"), get("until")
        unresolved = str(q.get("unresolved", "")).lower() in ("1", "true", "yes", "on")
        return cls(tenant=get("tenant"), provider=get("provider"), status=status, cls=klass, reason=get("reason"),
                   since=parse_time(since) if since else None, until=parse_time(until) if until else None,
                   raw_id=raw_id, external_id=get("externalId") or get("external_id"),
                   field=field.strip() if field else None, value=str(value) if field else None,
                   unresolved=unresolved)

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self) if f.name != "unresolved")

    def to_json(self) -> dict[str, Any]:
        out = {}
        for k, v in asdict(self).items():
            if v in (None, False):
                continue
            out["class" if k == "cls" else k] = v.isoformat() if isinstance(v, datetime) else v
        return out

    def query_string(self) -> dict[str, str]:
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.to_json().items()}

    def where(self, params: list[Any], alias: str = "r") -> str:
        """SQL conditions on ``raw_payloads {alias}``; appends to ``params`` ($n numbering continues)."""
        def p(value: Any, cast: str = "") -> str:
            params.append(value)
            return f"${len(params)}{cast}"

        a = alias
        conds: list[str] = []
        if self.raw_id:
            conds.append(f"{a}.raw_id = {p(self.raw_id, '::uuid')}")
        for column, value in (("tenant_id", self.tenant), ("provider", self.provider), ("status", self.status)):
            if value:
                conds.append(f"{a}.{column} = {p(value)}")
        if self.since:
            conds.append(f"{a}.received_at >= {p(self.since)}")
        if self.until:
            conds.append(f"{a}.received_at < {p(self.until)}")
        if self.cls or self.reason or self.unresolved:
            sub = ["f.raw_id IS NOT NULL"]
            if self.cls:
                sub.append(f"f.class = {p(self.cls)}")
            if self.reason:
                sub.append(f"f.reason_code = {p(self.reason)}")
            if self.unresolved:
                sub.append("f.resolved_at IS NULL")
            conds.append(f"{a}.raw_id IN (SELECT f.raw_id FROM failures f WHERE {' AND '.join(sub)})")
        if self.external_id:
            conds.append(f"{a}.raw_id IN (SELECT s.raw_id FROM raw_search s "
                         f"WHERE s.ext_ids @> ARRAY[{p(self.external_id)}]::text[])")
        if self.field and self.value is not None:
            docs = [f"s.doc @> {p(json.dumps(containment(self.field, v)), '::jsonb')}"
                    for v in field_candidates(self.value)]
            conds.append(f"{a}.raw_id IN (SELECT s.raw_id FROM raw_search s WHERE {' OR '.join(docs)})")
        return " AND ".join(conds) or "TRUE"
