"""Reads and writes of the console over PostgreSQL (and the body from S3); shared by the API and the pages."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import asyncpg

from ingest import feeds
from ingest.canonical.mapping import ENTITIES
from ingest.db import repositories
from ingest.rawlog.publisher import read_body
from ingest.rawlog.s3 import S3Store
from services.support.filters import PayloadFilter
from services.support.trail import parse_missing, trail

PAGE_MAX = 500


def iso(v: Any) -> Any:
    return v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v


async def list_payloads(pool: asyncpg.Pool, filt: PayloadFilter, *, limit: int = 50,
                        before: tuple[datetime, str] | None = None) -> dict[str, Any]:
    params: list[Any] = []
    where = filt.where(params)
    if before:
        params += [before[0], before[1]]
        where += f" AND (r.received_at, r.raw_id) < (${len(params) - 1}, ${len(params)}::uuid)"
    params.append(min(max(limit, 1), PAGE_MAX))
    rows = await pool.fetch(
        "SELECT r.raw_id::text, r.received_at, r.tenant_id, r.provider, r.kind, r.family, r.route, r.size, "
        "r.status, r.status_stage, r.content_type, f.class, f.reason_code, f.message "
        f"FROM raw_payloads r LEFT JOIN LATERAL (SELECT class, reason_code, message FROM failures x "
        "WHERE x.raw_id = r.raw_id ORDER BY x.occurred_at DESC LIMIT 1) f ON true "
        f"WHERE {where} ORDER BY r.received_at DESC, r.raw_id DESC LIMIT ${len(params)}", *params)
    items = [{"rawId": r["raw_id"], "receivedAt": iso(r["received_at"]), "tenantId": r["tenant_id"],
              "provider": r["provider"], "kind": r["kind"], "family": r["family"], "route": r["route"],
              "size": r["size"], "status": r["status"], "statusStage": r["status_stage"],
              "contentType": r["content_type"],
              "lastFailure": {"class": r["class"], "reasonCode": r["reason_code"], "message": r["message"]}
              if r["class"] else None} for r in rows]
    cursor = f"{items[-1]['receivedAt']}|{items[-1]['rawId']}" if len(items) == params[-1] else None
    return {"items": items, "next": cursor}


def pretty(body: bytes, content_type: str) -> str | None:
    if "json" not in content_type.lower() and not body.lstrip()[:1] in (b"{", b"["):
        return None
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return None


async def payload(pool: asyncpg.Pool, store: S3Store, raw_id: str) -> dict[str, Any] | None:
    rows = await repositories.load_raw(pool, [raw_id])
    if not rows:
        return None
    row = rows[0]
    body = await read_body(store, row)
    failures = [dict(r) for r in await pool.fetch("SELECT * FROM failures WHERE raw_id = $1::uuid "
                                                  "ORDER BY occurred_at", raw_id)]
    outcomes = [dict(r) for r in await pool.fetch("SELECT * FROM outcomes WHERE raw_id = $1::uuid", raw_id)]
    history = [dict(r) for r in await pool.fetch(
        "SELECT at, actor, action, details FROM audit_log WHERE target = $1 ORDER BY at", raw_id)]
    for h in history:
        h["details"] = h["details"] if isinstance(h["details"], dict) else json.loads(h["details"] or "{}")
    replays = [{"replayId": h["details"].get("replayId"), "jobId": h["details"].get("jobId"), "at": iso(h["at"]),
                "actor": h["actor"]} for h in history if h["action"] == "raw.replay"]
    text = body.decode("utf-8", errors="replace")
    progress = await feeds.import_progress(pool, raw_id) if row.family == "import" else None
    return {
        "rawId": row.raw_id, "receivedAt": iso(row.received_at), "tenantId": row.tenant_id,
        "provider": row.provider, "kind": row.kind, "family": row.family, "route": row.route, "size": row.size,
        "sha256": row.sha256, "contentType": row.content_type, "status": row.status,
        "publishedAt": iso(row.published_at), "headers": row.headers, "body": text,
        "bodyPretty": pretty(body, row.content_type),
        "failures": [_failure_json(f) for f in failures],
        "trail": [{**a, "at": iso(a["at"])} for a in trail(failures, outcomes, replays)],
        "replays": replays,
        "import": progress,  # a bulk import's rows done / total, commands and failures so far (else null)
        "history": [{"at": iso(h["at"]), "actor": h["actor"], "action": h["action"], "details": h["details"]}
                    for h in history]}


def _failure_json(f: dict[str, Any]) -> dict[str, Any]:
    details = f["details"] if isinstance(f["details"], dict) else json.loads(f["details"] or "{}")
    return {"failureId": str(f["failure_id"]), "class": f["class"], "stage": f["stage"],
            "reasonCode": f["reason_code"], "message": f["message"], "rawId": str(f["raw_id"]) if f["raw_id"] else None,
            "tenantId": f["tenant_id"], "provider": f["provider"], "occurredAt": iso(f["occurred_at"]),
            "attempt": f["attempt"], "replayId": f["replay_id"], "details": details,
            "originTopic": f["origin_topic"], "originPartition": f["origin_partition"],
            "originOffset": f["origin_offset"], "resolvedAt": iso(f["resolved_at"]),
            "resolution": f["resolution"], "resolutionNote": f["resolution_note"]}


async def failure_groups(pool: asyncpg.Pool, *, tenant: str | None = None, provider: str | None = None,
                         cls: str | None = None, include_resolved: bool = False) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT tenant_id, provider, class, reason_code, count(*) AS failures, count(DISTINCT raw_id) AS payloads, "
        "min(occurred_at) AS first_seen, max(occurred_at) AS last_seen, (array_agg(message ORDER BY occurred_at "
        "DESC))[1] AS sample FROM failures WHERE ($1::text IS NULL OR tenant_id = $1) "
        "AND ($2::text IS NULL OR provider = $2) AND ($3::text IS NULL OR class = $3) "
        "AND ($4 OR resolved_at IS NULL) GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC, max(occurred_at) DESC LIMIT 500",
        tenant, provider, cls, include_resolved)
    return [{"tenantId": r["tenant_id"], "provider": r["provider"], "class": r["class"],
             "reasonCode": r["reason_code"], "failures": r["failures"], "payloads": r["payloads"],
             "firstSeen": iso(r["first_seen"]), "lastSeen": iso(r["last_seen"]), "sample": r["sample"]} for r in rows]


async def missing_mappings(pool: asyncpg.Pool, *, tenant: str | None = None, provider: str | None = None
                           ) -> list[dict[str, Any]]:
    """Each missing (tenant, provider, entity, external id) behind unresolved mapping failures, with counts."""
    rows = await pool.fetch(
        "SELECT tenant_id, provider, k, count(DISTINCT raw_id) AS payloads, max(occurred_at) AS last_seen "
        "FROM failures, unnest(string_to_array(details->>'missing', ',')) AS k WHERE class = 'mapping' "
        "AND resolved_at IS NULL AND ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR provider = $2) "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 5 DESC LIMIT 500", tenant, provider)
    out = []
    for r in rows:
        for entity, external in parse_missing(r["k"]):
            out.append({"tenantId": r["tenant_id"], "provider": r["provider"], "entity": entity,
                        "externalId": external, "payloads": r["payloads"], "lastSeen": iso(r["last_seen"])})
    return out


async def resolve_failure(pool: asyncpg.Pool, failure_id: str, *, resolution: str, note: str, actor: str,
                          remote: str | None) -> dict[str, Any] | None:
    async with pool.acquire() as c, c.transaction():
        row = await c.fetchrow("UPDATE failures SET resolved_at = now(), resolution = $2, resolution_note = $3 "
                               "WHERE failure_id = $1::uuid RETURNING *", failure_id, resolution, note)
        if row:
            await repositories.audit(c, actor, f"failure.{resolution}", tenant_id=row["tenant_id"],
                                     target=str(row["raw_id"]) if row["raw_id"] else failure_id, remote_addr=remote,
                                     details={"failureId": failure_id, "resolution": resolution, "note": note})
    return _failure_json(dict(row)) if row else None


MAPPING_COLUMNS = ("entity", "external_id", "canonical_id")
MAX_REPORTED = 20


class MappingFileError(ValueError):
    """Every problem of a mapping file or list, each with where it is (``line N`` of a file, ``row N`` of a list).

    Nothing is imported when there is one: a half-imported file is worse than none.
    """

    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        self.problems = problems
        super().__init__(self.render())

    def render(self, source: str | None = None) -> str:
        """``line 3: …`` (or ``FILE:3: …`` when ``source`` names the file), the first 20 problems."""
        out = []
        for where, message in self.problems[:MAX_REPORTED]:
            if source and where and where.startswith("line "):
                out.append(f"{source}:{where[5:]}: {message}")
            elif source:
                out.append(f"{source}: {where + ': ' if where else ''}{message}")
            else:
                out.append(f"{where + ': ' if where else ''}{message}")
        if len(self.problems) > MAX_REPORTED:
            out.append(f"... and {len(self.problems) - MAX_REPORTED} more")
        return "\n".join(out) if source else "; ".join(out)


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM); otherwise the line of the first byte that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise MappingFileError([(f"line {line}", f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as "
                                                  "UTF-8 CSV")]) from exc


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a mapping CSV as ``{entity, externalId, canonicalId, line}``.

    Header names are matched case- and space-insensitively, other columns are ignored, blank lines skipped,
    quoting and CRLF are standard CSV.
    """
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise MappingFileError([(None, "empty file: expected a header line entity,external_id,canonical_id")])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        names = [h.strip().lower() for h in header]
        missing = [c for c in MAPPING_COLUMNS if c not in names]
        if missing:
            raise MappingFileError([("line 1", f"missing columns {', '.join(missing)} (the header is "
                                               f"{','.join(header)!r}; expected entity,external_id,canonical_id, "
                                               "comma-separated)")])
        at = {c: names.index(c) for c in MAPPING_COLUMNS}
        items = []
        for record in reader:
            if not any(field.strip() for field in record):
                continue
            item = {"line": reader.line_num}
            for column, key in zip(MAPPING_COLUMNS, ("entity", "externalId", "canonicalId")):
                item[key] = record[at[column]] if at[column] < len(record) else ""
            items.append(item)
    except csv.Error as exc:
        raise MappingFileError([(f"line {reader.line_num}", f"not readable as CSV: {exc}")]) from exc
    return items


def validate_mappings(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(entity, external id, canonical id) of every item, or every problem at once (MappingFileError).

    Entities are case-insensitive; the same row twice is one mapping; one key mapped to two canonical ids is
    a problem naming both places.
    """
    if not items:
        raise MappingFileError([(None, "no mapping rows")])
    problems: list[tuple[str | None, str]] = []
    out: list[tuple[str, str, str]] = []
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for n, m in enumerate(items):
        where = f"line {m['line']}" if isinstance(m, dict) and m.get("line") else f"row {n + 1}"
        if not isinstance(m, dict):
            problems.append((where, "not an object {entity, externalId, canonicalId}"))
            continue
        entity = str(m.get("entity") or "").strip().lower()
        ext = str(m.get("externalId") or m.get("external_id") or "").strip()
        canonical = str(m.get("canonicalId") or m.get("canonical_id") or "").strip()
        if entity not in ENTITIES:
            problems.append((where, f"entity {str(m.get('entity') or '')!r} is not one of {', '.join(ENTITIES)}"))
            continue
        if not ext or not canonical:
            problems.append((where, "external_id and canonical_id are required"))
            continue
        first = seen.get((entity, ext))
        if first is None:
            seen[(entity, ext)] = (canonical, where)
            out.append((entity, ext, canonical))
        elif first[0] != canonical:
            problems.append((where, f"{entity} {ext!r} maps to {canonical!r} here but to {first[0]!r} on {first[1]}"))
    if problems:
        raise MappingFileError(problems)
    return out


async def check_mapping_target(pool: asyncpg.Pool | asyncpg.Connection, tenant: str, provider: str) -> str | None:
    """Why mappings cannot be stored for this tenant/provider, or None: they would never be read."""
    from ingest.adapters.registry import registered_providers

    if not await repositories.tenant_exists(pool, tenant):
        return f"unknown tenant {tenant!r}"
    if provider not in registered_providers():
        return f"unknown provider {provider!r}; one of: {', '.join(registered_providers())}"
    return None


async def list_mappings(pool: asyncpg.Pool, tenant: str, provider: str | None, limit: int = 1000
                        ) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM mappings WHERE tenant_id = $1 AND ($2::text IS NULL OR provider = $2) "
                            "ORDER BY provider, entity, external_id LIMIT $3", tenant, provider, limit)
    return [{"tenantId": r["tenant_id"], "provider": r["provider"], "entity": r["entity"],
             "externalId": r["external_id"], "canonicalId": r["canonical_id"], "autoCreated": r["auto_created"],
             "updatedAt": iso(r["updated_at"])} for r in rows]


async def export_csv(pool: asyncpg.Pool, tenant: str, provider: str | None) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["entity", "external_id", "canonical_id"] + ([] if provider else ["provider"]))
    async with pool.acquire() as c, c.transaction():
        async for r in c.cursor("SELECT provider, entity, external_id, canonical_id FROM mappings WHERE tenant_id = $1 "
                                "AND ($2::text IS NULL OR provider = $2) ORDER BY provider, entity, external_id",
                                tenant, provider):
            w.writerow([r["entity"], r["external_id"], r["canonical_id"]] + ([] if provider else [r["provider"]]))
    return out.getvalue()
