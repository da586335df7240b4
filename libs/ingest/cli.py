"""``pos-ingest``: the one command line for operators and support staff (contract §8)."""
from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

#: every service, one line each: name → "module:coroutine"
SERVICES: dict[str, str] = {
    "receiver": "services.receiver.app:main",
    "dedupe": "services.dedupe.app:main",
    "mapper": "services.mapper.app:main",
    "transformer": "services.transformer.app:main",
    "validator": "services.validator.app:main",
    "command-writer": "services.command_writer.app:main",
    "failure-recorder": "services.failure_recorder.app:main",
    "feeds": "services.feeds.app:main",
    "support": "services.support.app:main",
    "poller": "services.poller.app:main",
    "views": "services.views.app:main",
}


def _settings() -> Any:
    from ingest.settings import CommonSettings

    return CommonSettings()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _parse_time(text: str) -> datetime:
    """RFC 3339 (``Z`` or offset), a date, or a relative ``-2h`` / ``30m`` / ``7d`` before now."""
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text.lstrip("-")[:-1].isdigit() and text[-1] in units:
        return datetime.now(timezone.utc) - timedelta(seconds=int(text.lstrip("-")[:-1]) * units[text[-1]])
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=int(text[:-1]) * units[text[-1]]) if text[-1] in units else timedelta(days=int(text))


# --- commands ----------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from ingest.observability.logging import setup

    target = SERVICES.get(args.service)
    if target is None:
        print(f"unknown service {args.service!r}; one of: {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    setup(args.service, _settings().log_level)
    module, _, fn = target.partition(":")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(getattr(importlib.import_module(module), fn)())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from ingest.db.pool import migrate

    applied = _run(migrate(_settings().dsn))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from ingest.admin import create_topics

    s = _settings()
    created = create_topics(s.kafka_bootstrap_servers, prefix=s.topic_prefix, partitions=args.partitions,
                            replication_factor=args.replication_factor)
    print(f"topics created: {', '.join(created) if created else 'none (all exist)'}")
    return 0


def cmd_tenants_add(args: argparse.Namespace) -> int:
    from ingest.db import repositories
    from ingest.db.pool import create_pool

    async def go() -> None:
        pool = await create_pool(_settings().dsn, max_size=1)
        try:
            await repositories.add_tenant(pool, args.tenant, auto_create_items=args.auto_create_items,
                                          timezone=args.timezone, default_currency=args.currency)
            await repositories.audit(pool, "cli", "tenant.add", tenant_id=args.tenant,
                                     details={"autoCreateItems": args.auto_create_items})
        finally:
            await pool.close()

    _run(go())
    print(f"tenant {args.tenant} ready (auto-create items: {'on' if args.auto_create_items else 'off'})")
    return 0


def cmd_sources_add(args: argparse.Namespace) -> int:
    from ingest.adapters.registry import registered_providers
    from ingest.crypto import SecretBox
    from ingest.db import repositories
    from ingest.db.pool import create_pool

    if args.provider not in registered_providers():
        print(f"unknown provider {args.provider!r}; one of: {', '.join(registered_providers())}", file=sys.stderr)
        return 2
    s = _settings()

    async def go() -> int:
        pool = await create_pool(s.dsn, max_size=1)
        try:
            if not await repositories.tenant_exists(pool, args.tenant):
                print(f"unknown tenant {args.tenant!r}: run `pos-ingest tenants add {args.tenant}` first",
                      file=sys.stderr)
                return 2
            options = json.loads(args.options) if args.options else {}
            if args.tolerance_s is not None:
                options["tolerance_seconds"] = args.tolerance_s
            if args.secret is not None:
                await repositories.add_source_secret(pool, SecretBox(s.secrets_key.get_secret_value()
                                                                     if s.secrets_key else None),
                                                     args.tenant, args.provider, args.secret, options=options)
                await repositories.audit(pool, "cli", "source.secret.add", tenant_id=args.tenant,
                                         target=args.provider)
            cidrs = None if args.allow_cidr is None else [c for c in args.allow_cidr if c]
            if cidrs is not None or args.rate_limit is not None or (options and args.secret is None):
                await repositories.configure_source(pool, args.tenant, args.provider, ip_allowlist=cidrs,
                                                    rate_limit_per_s=args.rate_limit, options=options)
                await repositories.audit(pool, "cli", "source.configure", tenant_id=args.tenant,
                                         target=args.provider, details={"ipAllowlist": cidrs,
                                                                        "rateLimitPerS": args.rate_limit,
                                                                        "options": options})
            return 0
        finally:
            await pool.close()

    import ipaddress

    if args.secret is None and args.allow_cidr is None and args.rate_limit is None and args.tolerance_s is None \
            and not args.options:
        print("nothing to do: give --secret and/or --allow-cidr/--rate-limit/--tolerance-s/--options",
              file=sys.stderr)
        return 2
    try:
        for cidr in args.allow_cidr or []:
            if cidr:
                ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        print(f"--allow-cidr: {exc}", file=sys.stderr)
        return 2
    if args.rate_limit is not None and args.rate_limit < 0:
        print("--rate-limit: requests per second, 0 to remove the limit", file=sys.stderr)
        return 2
    rc = _run(go())
    if rc == 0 and args.secret is not None:
        print(f"source {args.tenant}/{args.provider} has a new active secret (the previous one stays valid "
              "until the next rotation)")
    elif rc == 0:
        print(f"source {args.tenant}/{args.provider} configured")
    return int(rc)


def cmd_mappings_import(args: argparse.Namespace) -> int:
    from ingest.canonical.mapping import ENTITIES
    from ingest.db import repositories
    from ingest.db.pool import create_pool

    rows = []
    with open(args.file, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"entity", "external_id", "canonical_id"} - set(reader.fieldnames or [])
        if missing:
            print(f"{args.file}: missing columns {', '.join(sorted(missing))} "
                  "(expected entity,external_id,canonical_id)", file=sys.stderr)
            return 2
        for n, row in enumerate(reader, start=2):
            entity = (row["entity"] or "").strip()
            if entity not in ENTITIES:
                print(f"{args.file}:{n}: entity {entity!r} is not one of {', '.join(ENTITIES)}", file=sys.stderr)
                return 2
            ext, canonical = (row["external_id"] or "").strip(), (row["canonical_id"] or "").strip()
            if not ext or not canonical:
                print(f"{args.file}:{n}: external_id and canonical_id are required", file=sys.stderr)
                return 2
            rows.append((args.tenant, args.provider, entity, ext, canonical))

    async def go() -> int:
        pool = await create_pool(_settings().dsn, max_size=1)
        try:
            count = await repositories.upsert_mappings(pool, rows)
            await repositories.audit(pool, "cli", "mappings.import", tenant_id=args.tenant, target=args.provider,
                                     details={"rows": len(rows), "file": str(args.file)})
            return count
        finally:
            await pool.close()

    count = _run(go())
    print(f"imported {count} mappings for {args.tenant}/{args.provider}")
    return 0


def cmd_events_tail(args: argparse.Namespace) -> int:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    from ingest.avro import DecodeError, codec

    s = _settings()
    topic = s.topic(args.topic)
    consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap_servers, "group.id": f"tail-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest" if args.from_beginning else "latest"})
    meta = consumer.list_topics(topic, timeout=10)
    if topic not in meta.topics or meta.topics[topic].error is not None:
        print(f"unknown topic {args.topic!r}", file=sys.stderr)
        return 2
    start = OFFSET_BEGINNING if args.from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in meta.topics[topic].partitions])
    deadline = time.monotonic() + args.timeout if args.timeout else None
    seen = 0
    try:
        while args.max is None or seen < args.max:
            if deadline is not None and time.monotonic() >= deadline:
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            try:
                _, record = codec().decode(msg.value() or b"")
            except DecodeError as exc:
                record = {"_undecodable": str(exc)}
            print(_dumps(record), flush=True)
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def cmd_raw_show(args: argparse.Namespace) -> int:
    from ingest.db import repositories
    from ingest.db.pool import create_pool
    from ingest.rawlog.publisher import read_body
    from ingest.rawlog.s3 import S3Store

    s = _settings()

    async def go() -> tuple[Any, bytes] | None:
        pool = await create_pool(s.dsn, max_size=1)
        store = S3Store(s)
        try:
            rows = await repositories.load_raw(pool, [args.raw_id])
            if not rows:
                return None
            return rows[0], await read_body(store, rows[0])
        finally:
            await pool.close()
            store.close()

    try:
        uuid.UUID(args.raw_id)
    except ValueError:
        print(f"not a raw id: {args.raw_id!r}", file=sys.stderr)
        return 2
    found = _run(go())
    if found is None:
        print(f"no raw payload {args.raw_id}", file=sys.stderr)
        return 1
    row, body = found
    if args.body_only:
        sys.stdout.buffer.write(body)
        return 0
    print(_dumps({"rawId": row.raw_id, "tenantId": row.tenant_id, "provider": row.provider, "kind": row.kind,
                  "family": row.family, "route": row.route, "receivedAt": row.received_at, "size": row.size,
                  "sha256": row.sha256, "contentType": row.content_type, "status": row.status,
                  "headers": row.headers}))
    sys.stdout.flush()
    sys.stdout.buffer.write(body)
    if not body.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    return 0


def cmd_failures_list(args: argparse.Namespace) -> int:
    from ingest.db.pool import create_pool

    s = _settings()
    where, params = [], []
    for column, value in (("class", args.cls), ("provider", args.provider), ("tenant_id", args.tenant)):
        if value:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    if args.since:
        params.append(_parse_time(args.since))
        where.append(f"occurred_at >= ${len(params)}")
    params.append(args.limit)
    sql = (f"SELECT * FROM failures {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY occurred_at DESC LIMIT ${len(params)}")

    async def go() -> list[Any]:
        pool = await create_pool(s.dsn, max_size=1)
        try:
            return list(await pool.fetch(sql, *params))
        finally:
            await pool.close()

    rows = _run(go())
    keys = ("failureId", "class", "stage", "reasonCode", "message", "rawId", "tenantId", "provider", "occurredAt",
            "attempt", "originTopic", "originPartition", "originOffset")
    cols = ("failure_id", "class", "stage", "reason_code", "message", "raw_id", "tenant_id", "provider",
            "occurred_at", "attempt", "origin_topic", "origin_partition", "origin_offset")
    for r in rows:
        item = {k: r[c] for k, c in zip(keys, cols)}
        item["details"] = json.loads(r["details"]) if isinstance(r["details"], str) else r["details"]
        if args.json:
            print(_dumps(item))
        else:
            when = _json_default(r["occurred_at"])
            print(f"{when}  {r['class']:<10} {r['stage']:<15} {r['reason_code']:<24} {r['tenant_id'] or '-'}/"
                  f"{r['provider'] or '-'}  raw={r['raw_id'] or '-'}  {r['message'][:120]}")
    if not args.json:
        print(f"{len(rows)} failure(s)", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ingest.replay import replay_ids

    s = _settings()
    if args.raw_ids:
        result = _run(replay_ids(s, args.raw_ids, actor="cli"))
    else:
        if not (args.cls or args.provider or args.since or args.tenant):
            print("replay needs RAW_ID... or at least one of --class/--provider/--tenant/--since", file=sys.stderr)
            return 2
        # the same replay job as the support console: persisted in PG, throttled, resumable by the service
        from services.support.cli import replay_job

        job = _run(replay_job(cls=args.cls, provider=args.provider, tenant=args.tenant, since=args.since,
                              until=args.until, unresolved=not args.include_resolved, rate=args.rate,
                              submit=args.submit))
        print(_dumps(job))
        return 0 if job["state"] in ("done", "pending", "running") else 1
    print(_dumps(result))
    return 0 if not result.get("missing") else 1


def cmd_retention_apply(args: argparse.Namespace) -> int:
    from services.support.cli import retention_apply

    print(_dumps(_run(retention_apply(args.months))))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ingest import apikeys

    s = _settings()
    if args.keys_cmd == "issue":
        expires = datetime.now(timezone.utc) + _duration(args.expires_in) if args.expires_in else None
        issued = _run(apikeys.issue(s, args.tenant, expires_at=expires, name=args.name or "", actor="cli",
                                    rate_limit_per_s=args.rate_limit))
        if issued is None:
            print(f"unknown tenant {args.tenant!r}", file=sys.stderr)
            return 2
        print(_dumps(issued))
        print("store this key now: it is shown once and kept only as a hash", file=sys.stderr)
    elif args.keys_cmd == "revoke":
        ok = _run(apikeys.revoke(s, int(args.key_id), actor="cli"))
        print(f"key {args.key_id} {'revoked' if ok else 'not found or already revoked'}")
        return 0 if ok else 1
    else:
        for k in _run(apikeys.list_keys(s, args.tenant)):
            print(_dumps(k))
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    """``poll add`` / ``poll list`` / ``poll run``: the poller's per-source schedules (docs/poller.md)."""
    from ingest.crypto import SecretBox
    from ingest.db import repositories
    from ingest.db.pool import create_pool
    from services.poller import app as poller
    from services.poller.auth import CredentialError
    from services.poller.handler import PlanError, parse_every
    from services.poller.settings import PollerSettings

    s = PollerSettings()

    async def go() -> int:
        pool = await create_pool(s.dsn, max_size=2)
        try:
            if args.poll_cmd == "list":
                rows = await pool.fetch("SELECT * FROM poll_sources WHERE ($1::text IS NULL OR tenant_id = $1) "
                                        "ORDER BY tenant_id, provider", args.tenant)
                for row in poller.describe([dict(r) for r in rows]):
                    print(_dumps(row))
                return 0
            if not await repositories.tenant_exists(pool, args.tenant):
                print(f"unknown tenant {args.tenant!r}", file=sys.stderr)
                return 2
            if args.poll_cmd == "add":
                raw = sys.stdin.read() if args.credentials == "-" else args.credentials
                try:
                    creds = json.loads(raw or "{}")
                    options = json.loads(args.options) if args.options else {}
                    poll_id = await poller.register(
                        pool, SecretBox(s.secrets_key.get_secret_value() if s.secrets_key else None),
                        tenant=args.tenant, provider=args.provider, base_url=args.base_url, auth_kind=args.auth,
                        credentials=creds, interval_s=parse_every(args.every), options=options)
                except (ValueError, CredentialError, PlanError) as exc:
                    print(f"poll add refused: {exc}", file=sys.stderr)
                    return 2
                await repositories.audit(pool, "cli", "poll.add", tenant_id=args.tenant, target=args.provider)
                print(f"poll source {poll_id}: {args.provider} for {args.tenant} every {args.every}, due now")
                return 0
            p = await poller.build(s)
            await p.start()
            try:
                result = await p.run_now(args.tenant, args.provider)
            finally:
                await p.close()
            if result is None:
                print(f"no poll source {args.provider} for {args.tenant} (or it is being pulled)", file=sys.stderr)
                return 2
            print(_dumps({"status": result.status, "requests": result.requests, "rawIds": result.documents,
                          "error": result.error}))
            return 0 if result.status == "ok" else 1
        finally:
            await pool.close()

    return int(_run(go()))


def cmd_up(args: argparse.Namespace) -> int:
    from ingest.supervisor import up

    return up(services=args.services.split(",") if args.services else None)


def cmd_imports(args: argparse.Namespace) -> int:
    """``imports show RAW_ID`` / ``imports list TENANT``: bulk feed progress (rows, failures, state)."""
    from ingest import feeds
    from ingest.db.pool import create_pool

    async def go() -> Any:
        pool = await create_pool(_settings().dsn, max_size=1)
        try:
            if args.imports_cmd == "show":
                return await feeds.import_progress(pool, args.raw_id)
            return await feeds.list_imports(pool, args.tenant, limit=args.limit)
        finally:
            await pool.close()

    found = _run(go())
    if found is None:
        print(f"no import {args.raw_id}", file=sys.stderr)
        return 1
    for row in found if isinstance(found, list) else [found]:
        print(_dumps(row))
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from ingest.ledger import report as ledger_report

    s = _settings()
    result = _run(ledger_report(s, since=_parse_time(args.since) if args.since else None,
                                until=_parse_time(args.until) if args.until else None, tenant=args.tenant,
                                grace=timedelta(seconds=args.grace), scan=args.scan_topics))
    print(_dumps(result))
    return 0 if result["balanced"] else 1


def cmd_views_rebuild(args: argparse.Namespace) -> int:
    from services.views.app import rebuild

    print(_dumps(rebuild()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pos-ingest", description="pos-ingest: the integration hub for catalogs")
    sub = p.add_subparsers(dest="cmd", required=True)

    up = sub.add_parser("up", help="run the whole local stack (embedded broker/S3 where not configured)")
    up.add_argument("--services", help="comma-separated subset of services to run")
    up.set_defaults(fn=cmd_up)
    run = sub.add_parser("run", help="run one service")
    run.add_argument("service", choices=list(SERVICES))
    run.set_defaults(fn=cmd_run)
    sub.add_parser("migrate", help="create the database if missing and apply migrations").set_defaults(fn=cmd_migrate)
    topics = sub.add_parser("topics", help="topic administration")
    tsub = topics.add_subparsers(dest="topics_cmd", required=True)
    tc = tsub.add_parser("create", help="create every topic in deploy/topics.yaml (idempotent)")
    tc.add_argument("--partitions", type=int)
    tc.add_argument("--replication-factor", type=int)
    tc.set_defaults(fn=cmd_topics)

    tenants = sub.add_parser("tenants", help="tenants")
    tsub = tenants.add_subparsers(dest="tenants_cmd", required=True)
    ta = tsub.add_parser("add", help="add or update a tenant")
    ta.add_argument("tenant")
    ta.add_argument("--auto-create-items", action="store_true",
                    help="unmapped merchants, stores, items and variants get deterministic canonical ids")
    ta.add_argument("--timezone", default="UTC", help="IANA zone for zone-less vendor dates")
    ta.add_argument("--currency", help="default ISO 4217 currency for vendors that send none")
    ta.set_defaults(fn=cmd_tenants_add)

    sources = sub.add_parser("sources", help="vendor sources and their secrets")
    ssub = sources.add_subparsers(dest="sources_cmd", required=True)
    sa = ssub.add_parser("add", help="add a webhook secret/token for a provider (rotation keeps the previous one)")
    sa.add_argument("tenant")
    sa.add_argument("provider")
    sa.add_argument("--secret", help="a new active secret (the previous one stays valid: rotation)")
    sa.add_argument("--options", help="JSON object of non-secret source options")
    sa.add_argument("--allow-cidr", action="append",
                    help="accept this source only from these networks (repeatable; '' clears the allowlist)")
    sa.add_argument("--rate-limit", type=int, help="requests per second for this source (0 = no limit)")
    sa.add_argument("--tolerance-s", type=int, help="signature timestamp tolerance in seconds, both directions")
    sa.set_defaults(fn=cmd_sources_add)

    keys = sub.add_parser("keys", help="partner API keys")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    ki = ksub.add_parser("issue")
    ki.add_argument("tenant")
    ki.add_argument("--expires-in", help="e.g. 30d, 12h")
    ki.add_argument("--name")
    ki.add_argument("--rate-limit", type=int, help="requests per second for this key (default: the receiver's)")
    kr = ksub.add_parser("revoke")
    kr.add_argument("key_id")
    kl = ksub.add_parser("list")
    kl.add_argument("tenant")
    for k in (ki, kr, kl):
        k.set_defaults(fn=cmd_keys)

    mappings = sub.add_parser("mappings", help="vendor id → canonical id mappings")
    msub = mappings.add_subparsers(dest="mappings_cmd", required=True)
    mi = msub.add_parser("import", help="CSV with columns entity,external_id,canonical_id")
    mi.add_argument("tenant")
    mi.add_argument("provider")
    mi.add_argument("file", type=Path)
    mi.set_defaults(fn=cmd_mappings_import)

    events = sub.add_parser("events", help="read topics")
    esub = events.add_subparsers(dest="events_cmd", required=True)
    et = esub.add_parser("tail", help="decode a topic as JSON lines")
    et.add_argument("topic")
    et.add_argument("--from-beginning", action="store_true")
    et.add_argument("--max", type=int)
    et.add_argument("--timeout", type=float, help="stop after this many seconds")
    et.set_defaults(fn=cmd_events_tail)

    raw = sub.add_parser("raw", help="the raw log")
    rsub = raw.add_subparsers(dest="raw_cmd", required=True)
    rs = rsub.add_parser("show", help="metadata line (headers redacted) then the exact body")
    rs.add_argument("raw_id")
    rs.add_argument("--body-only", action="store_true", help="only the exact body bytes")
    rs.set_defaults(fn=cmd_raw_show)

    failures = sub.add_parser("failures", help="dead letters")
    fsub = failures.add_subparsers(dest="failures_cmd", required=True)
    fl = fsub.add_parser("list")
    fl.add_argument("--class", dest="cls", choices=["auth", "mapping", "validation", "processing", "duplicate"])
    fl.add_argument("--provider")
    fl.add_argument("--tenant")
    fl.add_argument("--since")
    fl.add_argument("--limit", type=int, default=100)
    fl.add_argument("--json", action="store_true")
    fl.set_defaults(fn=cmd_failures_list)

    rp = sub.add_parser("replay", help="re-run raw payloads from their exact bytes")
    rp.add_argument("raw_ids", nargs="*")
    rp.add_argument("--class", dest="cls", choices=["auth", "mapping", "validation", "processing", "duplicate"])
    rp.add_argument("--provider")
    rp.add_argument("--tenant")
    rp.add_argument("--since")
    rp.add_argument("--until")
    rp.add_argument("--include-resolved", action="store_true")
    rp.add_argument("--rate", type=float, help="payloads per second (default REPLAY_RATE_PER_S)")
    rp.add_argument("--submit", action="store_true", help="leave the job to the support service instead of "
                    "running it here")
    rp.set_defaults(fn=cmd_replay)

    rt = sub.add_parser("retention", help="raw log retention")
    rtsub = rt.add_subparsers(dest="sub", required=True)
    rta = rtsub.add_parser("apply", help="create future monthly partitions, drop expired ones, set the S3 "
                           "lifecycle rule (RETENTION_MONTHS)")
    rta.add_argument("--months", type=int)
    rta.set_defaults(fn=cmd_retention_apply)

    poll = sub.add_parser("poll", help="the poller's pull schedules (docs/poller.md)")
    psub = poll.add_subparsers(dest="poll_cmd", required=True)
    pa = psub.add_parser("add", help="add or replace a pull schedule for a tenant's provider")
    pa.add_argument("tenant")
    pa.add_argument("provider")
    pa.add_argument("--base-url", required=True)
    pa.add_argument("--auth", required=True, help="oauth2_client_credentials | oauth2_refresh | oauth2_password | "
                    "api_authentication | bearer | api_key | vinculum | none")
    pa.add_argument("--credentials", default="-", help="JSON object of the auth kind's fields, or - for stdin")
    pa.add_argument("--every", default="5m", help="interval, e.g. 30s, 5m, 1h")
    pa.add_argument("--options", help="JSON object: locations, endpoints, facilities, token_url, …")
    pl = psub.add_parser("list", help="schedules and their last status (no credentials)")
    pl.add_argument("--tenant")
    pr = psub.add_parser("run", help="pull one source now")
    pr.add_argument("tenant")
    pr.add_argument("provider")
    for sp in (pa, pl, pr):
        sp.set_defaults(fn=cmd_poll)

    views = sub.add_parser("views", help="the Redis views (availability, store status, catalog)")
    vsub = views.add_subparsers(dest="views_cmd", required=True)
    vsub.add_parser("rebuild", help="start an empty generation; the views service re-reads every topic into it"
                    ).set_defaults(fn=cmd_views_rebuild)

    lg = sub.add_parser("ledger", help="check that every acknowledged payload is accounted for")
    lg.add_argument("--since")
    lg.add_argument("--until")
    lg.add_argument("--tenant")
    lg.add_argument("--grace", type=float, default=60.0,
                    help="seconds a payload may still be in flight before it counts as lost (default 60)")
    lg.add_argument("--scan-topics", action="store_true",
                    help="also read the public topics (read_committed) and count commandIds seen twice")
    lg.set_defaults(fn=cmd_ledger)

    imports = sub.add_parser("imports", help="bulk feed imports: progress, failures, state")
    isub = imports.add_subparsers(dest="imports_cmd", required=True)
    ish = isub.add_parser("show", help="one import's progress as JSON")
    ish.add_argument("raw_id")
    il = isub.add_parser("list", help="a tenant's imports, newest first (JSON lines)")
    il.add_argument("tenant")
    il.add_argument("--limit", type=int, default=50)
    for sp in (ish, il):
        sp.set_defaults(fn=cmd_imports)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
