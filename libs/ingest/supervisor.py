"""``pos-ingest up``: the local stack as one supervised process group.

Starts an embedded broker / S3 server for whatever is not configured, creates the database and applies
migrations, creates topics and the bucket, then runs every service as a child ``pos-ingest run SERVICE``,
restarting one that exits unexpectedly with backoff. Prints ``pos-ingest ready`` once the receiver answers.
SIGINT/SIGTERM stops the children (SIGTERM, then SIGKILL after a grace period) and the embedded servers.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ingest.devstack import Embedded, start_broker, start_s3, wait_port

#: metrics ports of the processes without an HTTP API of their own (METRICS_PORT_BASE shifts them)
METRICS_OFFSETS = {"dedupe": 0, "mapper": 1, "transformer": 2, "validator": 3, "command-writer": 4,
                   "failure-recorder": 5, "poller": 6, "feeds": 7}


def _log(msg: str) -> None:
    print(f"[pos-ingest up] {msg}", file=sys.stderr, flush=True)


class Child:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.env, self.log_dir = name, env, log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.next_start = 0.0
        self.started_at = 0.0

    def start(self) -> None:
        out = open(self.log_dir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "run", self.name], env=self.env,
                                     stdout=out, stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()


def _service_available(name: str) -> bool:
    from ingest.cli import SERVICES

    module = SERVICES[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def up(services: list[str] | None = None) -> int:
    from ingest.admin import create_topics
    from ingest.cli import SERVICES
    from ingest.db.pool import migrate
    from ingest.rawlog.s3 import S3Store
    from ingest.settings import CommonSettings

    run_dir = Path(os.environ.get("POS_INGEST_RUN_DIR", ".run"))
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    embedded: list[Embedded] = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    children: list[Child] = []
    try:
        if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
            broker = start_broker(int(env["BROKER_PORT"]) if env.get("BROKER_PORT") else None,
                                  log_path=log_dir / "broker.log")
            embedded.append(broker)
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.url
            _log(f"embedded broker (Tansu) on {broker.url}")
        if not env.get("S3_ENDPOINT_URL"):
            s3 = start_s3(int(env["S3_PORT"]) if env.get("S3_PORT") else None, log_path=log_dir / "s3.log")
            embedded.append(s3)
            env["S3_ENDPOINT_URL"] = s3.url
            _log(f"embedded S3 (moto) on {s3.url}")
        env.setdefault("TOPIC_PARTITIONS", "3")
        env.setdefault("TOPIC_REPLICATION_FACTOR", "1")
        os.environ.update({k: env[k] for k in ("KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT_URL", "TOPIC_PARTITIONS",
                                               "TOPIC_REPLICATION_FACTOR")})
        settings = CommonSettings()
        stack_env = run_dir / "stack.env"
        stack_env.write_text("".join(f"{k}={env[k]}\n" for k in ("KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT_URL")
                                     if env.get(k)) + (f"DATABASE_URL={env['DATABASE_URL']}\n"
                                                       if env.get("DATABASE_URL") else ""))
        applied = asyncio.run(migrate(settings.dsn))
        _log(f"database ready ({len(applied)} migration(s) applied)")
        created = create_topics(settings.kafka_bootstrap_servers, prefix=settings.topic_prefix)
        _log(f"topics ready ({len(created)} created)")
        store = S3Store(settings)
        store.ensure_bucket_sync()
        store.close()
        base = int(env.get("METRICS_PORT_BASE", "9101"))
        wanted = services or [s for s in SERVICES if _service_available(s)]
        for name in wanted:
            child_env = dict(env)
            if name in METRICS_OFFSETS:
                child_env["METRICS_PORT"] = str(base + METRICS_OFFSETS[name])
            child_env.setdefault("STAGE_INSTANCE_ID", "0")
            children.append(Child(name, child_env, log_dir))
        for child in children:
            child.start()
        _log(f"started {', '.join(c.name for c in children)}; logs in {log_dir}")
        receiver_port = int(env.get("RECEIVER_PORT", "8080"))
        ready = "receiver" not in wanted
        deadline = time.monotonic() + 120
        while not stopping:
            if not ready:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{receiver_port}/healthz", timeout=1) as resp:
                        ready = resp.status == 200
                except OSError:
                    if time.monotonic() > deadline:
                        _log("receiver did not answer within 120 s; see its log")
                        deadline = float("inf")
                if ready:
                    print("pos-ingest ready", flush=True)
            for child in children:
                code = child.proc.poll() if child.proc else 0
                if code is None:
                    if time.monotonic() - child.started_at > 60:
                        child.restarts = 0  # a minute of health resets the backoff
                    continue
                now = time.monotonic()
                if child.next_start == 0.0:
                    delay = min(30.0, 0.5 * (2 ** child.restarts))
                    child.next_start = now + delay
                    _log(f"{child.name} exited with {code}; restarting in {delay:.1f}s")
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.start()
            time.sleep(0.2)
        _log("stopping")
        return 0
    finally:
        for child in children:
            child.stop()
        deadline = time.monotonic() + 10
        for child in children:
            if child.proc:
                try:
                    child.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait(5)
        for e in embedded:
            e.stop()
        if embedded:
            (run_dir / "stack.env").unlink(missing_ok=True)
        _log("stopped")


__all__ = ["up", "wait_port"]
