"""``pos-ingest``: the one command line for operators and support staff (contract §8)."""
from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
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
    from services.support.filters import parse_time

    return parse_time(text)


# --- argument types: a value argparse refuses is exit 2 with the usage, never a traceback -----------
def _time_arg(text: str) -> str:
    from services.support.filters import FilterError

    try:
        _parse_time(text)
    except FilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def _duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w``; a bare number is days. Positive, at most 10 years."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (a whole number with s, m, h, d or w, "
                                         "e.g. 30d or 12h; a bare number is days)")
    value = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if value <= timedelta(0) or value > timedelta(days=3660):
        raise argparse.ArgumentTypeError(f"{text!r}: a key must live more than 0 seconds and at most 10 years")
    return value


def _key_id(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 2 ** 63:
        raise argparse.ArgumentTypeError(f"not a key id: {text!r} (the apiKeyId number `keys issue`/`keys list` "
                                         "print)")
    return int(text)


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of at least 1")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds, 0 or more")
    return value


def _raw_id(text: str) -> str | None:
    """The canonical spelling of a raw id (any UUID form), or None."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None




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
    """Create a tenant, or change what the flags name; what they do not name stays as it is."""
    from zoneinfo import ZoneInfo

    from ingest.db import repositories
    from ingest.db.pool import create_pool

    tenant = args.tenant
    if not repositories.TENANT_ID.match(tenant):
        hint = f" (did you mean {tenant.lower()!r}?)" if repositories.TENANT_ID.match(tenant.lower()) else ""
        print(f"invalid tenant {tenant!r}: a tenant is the first DNS label of the Host header: 1-63 characters "
              f"a-z, 0-9 and '-', not starting or ending with '-'{hint}", file=sys.stderr)
        return 2
    if args.timezone is not None:
        try:
            ZoneInfo(args.timezone)
        except (ValueError, KeyError):
            print(f"--timezone: unknown IANA time zone {args.timezone!r} (e.g. Asia/Kolkata, UTC)", file=sys.stderr)
            return 2
    currency = args.currency.strip().upper() if args.currency is not None else None
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        print(f"--currency: {args.currency!r} is not an ISO 4217 code (e.g. INR, EUR)", file=sys.stderr)
        return 2

    async def go() -> tuple[bool, bool, str]:
        pool = await create_pool(_settings().dsn, max_size=1)
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow("SELECT auto_create_items, timezone FROM tenants WHERE tenant_id = $1 "
                                          "FOR UPDATE", tenant)
                auto = args.auto_create_items if args.auto_create_items is not None else \
                    bool(row and row["auto_create_items"])
                zone = args.timezone or (row["timezone"] if row else "UTC")
                await repositories.add_tenant(conn, tenant, auto_create_items=auto, timezone=zone,
                                              default_currency=currency)
                await repositories.audit(conn, "cli", "tenant.update" if row else "tenant.add", tenant_id=tenant,
                                         details={"autoCreateItems": auto, "timezone": zone, "currency": currency})
                return row is not None, auto, zone
        finally:
            await pool.close()

    existed, auto, zone = _run(go())
    print(f"tenant {tenant} {'updated' if existed else 'created'} (auto-create items: {'on' if auto else 'off'}, "
          f"timezone: {zone})")
    return 0


def cmd_sources_add(args: argparse.Namespace) -> int:
    from ingest.adapters.registry import registered_providers
    from ingest.crypto import SecretBox
    from ingest.db import repositories
    from ingest.db.pool import create_pool

    if args.provider not in registered_providers():
        print(f"unknown provider {args.provider!r}; one of: {', '.join(registered_providers())}", file=sys.stderr)
        return 2
    if args.secret is not None and not args.secret.strip():
        print("--secret: an empty secret would let anyone sign; give the provider's secret or token",
              file=sys.stderr)
        return 2
    if args.options:
        try:
            if not isinstance(json.loads(args.options), dict):
                raise ValueError("not an object")
        except ValueError as exc:
            print(f"--options: a JSON object, e.g. '{{\"currency\": \"INR\"}}' ({exc})", file=sys.stderr)
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
    """All or nothing: every problem of the file is reported with its line, and then nothing is imported."""
    from ingest.db import repositories
    from ingest.db.pool import create_pool
    from services.support.queries import MappingFileError, check_mapping_target, decode_csv, parse_csv, \
        validate_mappings

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        found = validate_mappings(parse_csv(decode_csv(data)))
    except MappingFileError as exc:
        print(exc.render(str(args.file)) + "\nnothing imported", file=sys.stderr)
        return 2
    rows = [(args.tenant, args.provider, e, x, c) for e, x, c in found]

    async def go() -> int | str:
        pool = await create_pool(_settings().dsn, max_size=1)
        try:
            refused = await check_mapping_target(pool, args.tenant, args.provider)
            if refused:
                return refused
            async with pool.acquire() as conn, conn.transaction():
                count = await repositories.upsert_mappings(conn, rows)
                await repositories.audit(conn, "cli", "mappings.import", tenant_id=args.tenant, target=args.provider,
                                         details={"rows": len(rows), "file": str(args.file)})
            return count
        finally:
            await pool.close()

    count = _run(go())
    if isinstance(count, str):
        print(f"{count}; nothing imported", file=sys.stderr)
        return 2
    print(f"imported {count} mappings for {args.tenant}/{args.provider} (failed payloads they fix are re-driven "
          "by the support service within REDRIVE_INTERVAL_S)")
    return 0


def cmd_events_tail(args: argparse.Namespace) -> int:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    from ingest.avro import DecodeError, codec

    s = _settings()
    topic = s.topic(args.topic)
    import logging

    quiet = logging.getLogger("pos-ingest.tail.librdkafka")  # a broker that is down is said once, below
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap_servers, "group.id": f"tail-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest" if args.from_beginning else "latest"}, logger=quiet)
    meta = consumer.list_topics(topic, timeout=10)
    if topic not in meta.topics or meta.topics[topic].error is not None:
        known = sorted(t[len(s.topic_prefix):] for t in consumer.list_topics(timeout=10).topics
                       if t.startswith(s.topic_prefix) and not t.startswith("__"))
        consumer.close()
        print(f"unknown topic {args.topic!r}; topics: {', '.join(known) or 'none'}", file=sys.stderr)
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

    raw_id = _raw_id(args.raw_id)
    if raw_id is None:
        print(f"not a raw id: {args.raw_id!r} (the rawId a 202 answer, `failures list` or the console shows)",
              file=sys.stderr)
        return 2
    args.raw_id = raw_id
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
    if not body.endswith(b"\n") and sys.stdout.isatty():  # piped, the body stays byte for byte
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
    if args.until:
        params.append(_parse_time(args.until))
        where.append(f"occurred_at < ${len(params)}")
    if args.unresolved:
        where.append("resolved_at IS NULL")
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
        item["resolvedAt"], item["resolution"] = r["resolved_at"], r["resolution"]
        if args.json:
            print(_dumps(item))
        else:
            when = _json_default(r["occurred_at"])
            state = f"  [{r['resolution']}]" if r["resolved_at"] else ""
            print(f"{when}  {r['class']:<10} {r['stage']:<15} {r['reason_code']:<24} {r['tenant_id'] or '-'}/"
                  f"{r['provider'] or '-'}  raw={r['raw_id'] or '-'}  {r['message'][:120]}{state}")
    if not args.json:
        print(f"{len(rows)} failure(s)", file=sys.stderr)
    if len(rows) == args.limit:
        print(f"only the newest {args.limit} are shown: --limit N for more", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ingest.replay import replay_ids

    s = _settings()
    filters = args.cls or args.provider or args.since or args.until or args.tenant
    if args.raw_ids:
        if filters:
            print("replay takes RAW_ID... or filters (--class/--provider/--tenant/--since/--until), not both",
                  file=sys.stderr)
            return 2
        ids = [_raw_id(r) for r in args.raw_ids]
        bad = [r for r, i in zip(args.raw_ids, ids) if i is None]
        if bad:
            print(f"not a raw id: {', '.join(repr(b) for b in bad)}; nothing replayed", file=sys.stderr)
            return 2
        result = _run(replay_ids(s, list(dict.fromkeys(i for i in ids if i)), actor="cli"))
        print(_dumps(result))
        for missing in result.get("missing") or []:
            print(f"no raw payload {missing}", file=sys.stderr)
        return 0 if not result.get("missing") else 1
    if not filters:
        print("replay needs RAW_ID... or at least one of --class/--provider/--tenant/--since", file=sys.stderr)
        return 2
    if args.since and args.until and _parse_time(args.since) >= _parse_time(args.until):
        print(f"--since {args.since} is not before --until {args.until}: nothing would match", file=sys.stderr)
        return 2
    # the same replay job as the support console: persisted in PG, throttled, resumable by the service
    from services.support.cli import replay_job

    job = _run(replay_job(cls=args.cls, provider=args.provider, tenant=args.tenant, since=args.since,
                          until=args.until, unresolved=not args.include_resolved, rate=args.rate,
                          submit=args.submit))
    print(_dumps(job))
    if job.get("total") == 0 and args.cls and not args.include_resolved:
        print(f"nothing matched: --class {args.cls} selects payloads with an unresolved failure (a fixed mapping "
              "may already have re-driven them); --include-resolved to replay resolved ones too", file=sys.stderr)
    return 0 if job["state"] in ("done", "pending", "running") else 1


def cmd_retention_apply(args: argparse.Namespace) -> int:
    from services.support.cli import retention_apply

    print(_dumps(_run(retention_apply(args.months))))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ingest import apikeys

    s = _settings()
    if args.keys_cmd == "issue":
        expires = datetime.now(timezone.utc) + args.expires_in if args.expires_in else None
        issued = _run(apikeys.issue(s, args.tenant, expires_at=expires, name=args.name or "", actor="cli",
                                    rate_limit_per_s=args.rate_limit))
        if issued is None:
            print(f"unknown tenant {args.tenant!r}", file=sys.stderr)
            return 2
        print(_dumps(issued))
        print("store this key now: it is shown once and kept only as a hash", file=sys.stderr)
    elif args.keys_cmd == "revoke":
        if _run(apikeys.revoke(s, args.key_id, actor="cli")):
            print(f"key {args.key_id} revoked")
            return 0
        found = _run(_fetch("SELECT tenant_id, revoked_at FROM api_keys WHERE key_id = $1", args.key_id))
        if not found:
            print(f"no API key {args.key_id} (`pos-ingest keys list TENANT` shows a tenant's keys)", file=sys.stderr)
            return 1
        print(f"key {args.key_id} of {found[0]['tenant_id']} was already revoked at "
              f"{_json_default(found[0]['revoked_at'])}")
    else:
        if not _run(_tenant_exists(args.tenant)):
            print(f"unknown tenant {args.tenant!r}", file=sys.stderr)
            return 2
        for k in _run(apikeys.list_keys(s, args.tenant)):
            print(_dumps(k))
    return 0


async def _with_pool(use: Callable[[Any], Awaitable[Any]]) -> Any:
    """``use(pool)`` on a one-connection pool of the configured database (a CLI command's one question)."""
    from ingest.db.pool import create_pool

    pool = await create_pool(_settings().dsn, max_size=1)
    try:
        return await use(pool)
    finally:
        await pool.close()


async def _fetch(sql: str, *params: Any) -> list[Any]:
    return list(await _with_pool(lambda pool: pool.fetch(sql, *params)))


async def _tenant_exists(tenant: str) -> bool:
    from ingest.db import repositories

    return bool(await _with_pool(lambda pool: repositories.tenant_exists(pool, tenant)))


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
    ta.add_argument("--auto-create-items", action=argparse.BooleanOptionalAction, default=None,
                    help="unmapped merchants, stores, items and variants get deterministic canonical ids "
                         "(off for a new tenant; an existing tenant keeps its setting unless given)")
    ta.add_argument("--timezone", help="IANA zone for zone-less vendor dates (a new tenant: UTC)")
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
    ki.add_argument("--expires-in", type=_duration, help="e.g. 30d, 12h, 90m, 2w (a bare number is days)")
    ki.add_argument("--name")
    ki.add_argument("--rate-limit", type=int, help="requests per second for this key (default: the receiver's)")
    kr = ksub.add_parser("revoke")
    kr.add_argument("key_id", type=_key_id)
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
    et.add_argument("--max", type=_count, help="stop after this many records")
    et.add_argument("--timeout", type=_seconds, help="stop after this many seconds (whether or not records came)")
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
    fl.add_argument("--since", type=_time_arg, help="RFC 3339 (Z or ±HH:MM), a date, or e.g. -2h / 7d ago")
    fl.add_argument("--until", type=_time_arg, help="exclusive; same forms as --since")
    fl.add_argument("--unresolved", action="store_true", help="only failures not resolved or re-driven yet")
    fl.add_argument("--limit", type=_count, default=100)
    fl.add_argument("--json", action="store_true")
    fl.set_defaults(fn=cmd_failures_list)

    rp = sub.add_parser("replay", help="re-run raw payloads from their exact bytes")
    rp.add_argument("raw_ids", nargs="*")
    rp.add_argument("--class", dest="cls", choices=["auth", "mapping", "validation", "processing", "duplicate"])
    rp.add_argument("--provider")
    rp.add_argument("--tenant")
    rp.add_argument("--since", type=_time_arg, help="receipt time: RFC 3339 (Z or ±HH:MM), a date, or -2h / 7d")
    rp.add_argument("--until", type=_time_arg, help="exclusive; same forms as --since")
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
    lg.add_argument("--since", type=_time_arg)
    lg.add_argument("--until", type=_time_arg)
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


def _environment_error(exc: BaseException) -> str | None:
    """A one-line cause for what is not a bug of this program: a server down, a database not migrated."""
    import asyncpg
    from confluent_kafka import KafkaException

    if isinstance(exc, KafkaException):
        return f"broker {_settings().kafka_bootstrap_servers}: {exc.args[0].str() if exc.args else exc} " \
               "(is the stack up? KAFKA_BOOTSTRAP_SERVERS or .run/stack.env)"
    if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        return f"database: {exc} (DATABASE_URL; `pos-ingest migrate` creates and migrates it)"
    if isinstance(exc, OSError):
        return f"{exc} (is the stack up? servers come from the environment and .run/stack.env)"
    return None


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.fn in (cmd_up, cmd_run) or os.environ.get("POS_INGEST_DEBUG"):
        sys.exit(args.fn(args))
    try:
        code = args.fn(args)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except Exception as exc:
        cause = _environment_error(exc)
        if cause is None:
            raise
        print(f"pos-ingest {args.cmd}: {cause}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
