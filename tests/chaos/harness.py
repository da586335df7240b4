"""The chaos harness: a stack of its own behind TCP fault proxies, a steady signed load, one fault at a time.

Every dependency the stack uses goes through a ``FaultProxy``: the embedded Tansu broker (which advertises
the proxy's address, so every client reconnects through it), moto's S3 server and the machine's PostgreSQL.
The observer (ledger, byte checks) talks to PostgreSQL and S3 directly, so a fault never blinds it.

For each fault: load for a few seconds, inject, hold, heal, keep loading, wait until every stored payload
is accounted for, then check
- durability: every 2xx names a payload whose exact bytes are in the raw log (row + S3 segment);
- refusals: every non-2xx answer during the fault is a 503 envelope with ``Retry-After``;
- nothing lost: the ledger puts every stored payload of the run in a bucket, none lost or in flight;
- no duplicates: no ``commandId`` twice on the public topics (read_committed scan);
and measures the time to recover.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import boto3
import psutil

from ingest.devstack import Embedded, free_port, start_broker, start_s3
from ingest.ledger import payload_rows, scan_topics, summarize
from ingest.loadgen import Mix, setup_tenants
from ingest.settings import CommonSettings
from tests.chaos.faultproxy import FaultProxy
from tests.stack import Deps, Stack, start_stack

PG_HOST, PG_PORT = "127.0.0.1", 5432
STAGES = ("dedupe", "mapper", "transformer", "validator", "command-writer", "failure-recorder")


@dataclass
class Sent:
    """One request of the load and what the receiver answered."""

    seq: int
    template: str
    sha256: str
    sent_at: float
    done_at: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    raw_id: str | None = None
    envelope: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Load:
    """A steady open-loop load of signed mixed-provider webhooks for one tenant, in a thread of its own."""

    def __init__(self, base_url: str, tenant: str, mix: Mix, *, rate: float, duration_s: float,
                 seq_start: int, concurrency: int = 16, timeout_s: float = 45.0) -> None:
        self.base_url, self.tenant, self.mix = base_url, tenant, mix
        self.rate, self.duration_s, self.seq_start = rate, duration_s, seq_start
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.sent: list[Sent] = []
        self._stop_at: float | None = None  # monotonic; None: run for duration_s
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="chaos-load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop_after(self, seconds: float, *, until_ok_after: float | None = None, cap_s: float = 30.0) -> None:
        """End the load ``seconds`` from now; if ``until_ok_after`` (wall clock) is given, keep going until a
        2xx arrives after it (the receiver is back), at most ``cap_s`` more."""
        end = time.monotonic() + seconds
        if until_ok_after is not None:
            cap = time.monotonic() + cap_s
            while time.monotonic() < cap and not any(s.ok and s.done_at >= until_ok_after for s in self.sent):
                time.sleep(0.1)
            end = max(end, time.monotonic() + 0.5)
        self._stop_at = end

    def join(self) -> list[Sent]:
        self._thread.join(self.duration_s + self.timeout_s + 30)
        assert not self._thread.is_alive(), "the load did not finish in time"
        return self.sent

    async def _run(self) -> None:
        port = urlsplit(self.base_url).port
        slots = asyncio.Semaphore(self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def one(seq: int) -> None:
                req = self.mix.request(seq, self.tenant)
                s = Sent(seq, req.template, hashlib.sha256(req.body).hexdigest(), time.time())
                self.sent.append(s)
                headers = {**req.headers, "Host": f"{self.tenant}.localhost:{port}"}
                async with slots:
                    try:
                        async with session.post(self.base_url + req.path, data=req.body, headers=headers) as resp:
                            payload = await resp.read()
                            s.status, s.retry_after = resp.status, resp.headers.get("Retry-After")
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                        s.error, s.done_at = type(exc).__name__, time.time()
                        return
                s.done_at = time.time()
                try:
                    body = json.loads(payload) if payload else {}
                except ValueError:
                    body = {}
                if s.status == 202 and isinstance(body, dict):
                    s.raw_id = body.get("rawId")
                err = body.get("error") if isinstance(body, dict) else None
                s.envelope = isinstance(err, dict) and err.get("code") == s.status and "message" in err

            tasks = []
            t0 = time.monotonic()
            n = int(self.rate * self.duration_s)
            for i in range(n):
                delay = t0 + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._stop_at is not None and time.monotonic() >= self._stop_at:
                    break
                tasks.append(asyncio.create_task(one(self.seq_start + i)))
            await asyncio.gather(*tasks)


@dataclass
class FaultResult:
    fault: str
    sent: int = 0
    acknowledged: int = 0
    refused_503: int = 0
    transport_errors: int = 0
    stored: int = 0
    accounted: int = 0
    lost: int = 0
    duplicate_commands: int = 0
    duplicate_deliveries: int = 0
    ack_recovery_s: float = 0.0
    pipeline_recovery_s: float = 0.0
    buckets: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def recovery_s(self) -> float:
        return max(self.ack_recovery_s, self.pipeline_recovery_s)

    def line(self) -> str:
        return (f"{self.fault:<26} sent={self.sent:<4} acked={self.acknowledged:<4} 503={self.refused_503:<3} "
                f"errors={self.transport_errors:<3} stored={self.stored:<4} accounted={self.accounted:<4} "
                f"lost={self.lost} dup_commands={self.duplicate_commands} dup_deliveries={self.duplicate_deliveries}"
                f" recovery={self.recovery_s:.1f}s (acks {self.ack_recovery_s:.1f}s, pipeline "
                f"{self.pipeline_recovery_s:.1f}s)" + (f" VIOLATIONS={self.violations[:3]}" if self.violations else ""))

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "recovery_s": round(self.recovery_s, 2)}


class ChaosStack:
    """``pos-ingest up`` with its own broker, S3 server and database, every connection through a fault proxy."""

    def __init__(self, work_dir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        broker_port = free_port()
        self.kafka_proxy = FaultProxy("127.0.0.1", broker_port, name="kafka")
        self.broker: Embedded = start_broker(broker_port, log_path=work_dir / "broker.log",
                                             advertised_port=self.kafka_proxy.port)
        self.s3: Embedded = start_s3(log_path=work_dir / "s3.log")
        self.s3_proxy = FaultProxy("127.0.0.1", self.s3.port, name="s3")
        self.pg_proxy = FaultProxy(PG_HOST, PG_PORT, name="pg")
        deps = Deps(self.kafka_proxy.url, f"http://{self.s3_proxy.url}",
                    f"postgresql://postgres@{self.pg_proxy.url}/postgres")
        env = {"SWEEPER_INTERVAL_S": "1", "SWEEPER_GRACE_S": "3", "RAWLOG_FLUSH_MS": "4",
               "RETRY_BACKOFF_MAX_S": "2", "LOG_LEVEL": "INFO", "KAFKA_STALL_TIMEOUT_S": "30",
               **(extra_env or {})}
        self._gen = start_stack(deps, work_dir, extra_env=env)
        try:
            self.stack: Stack = next(self._gen)
        except BaseException:
            self._stop_deps()
            raise
        parts = urlsplit(self.stack.dsn)
        self.direct_dsn = urlunsplit(parts._replace(netloc=f"postgres@{PG_HOST}:{PG_PORT}"))
        self.settings = CommonSettings(database_url=self.direct_dsn, kafka_bootstrap_servers=self.stack.kafka,
                                       topic_prefix=self.stack.prefix, _env_file=None)  # type: ignore[call-arg]
        self.mix = Mix(nonce=int(uuid.uuid4().int % 20))
        self._seq = 0
        self._s3 = boto3.client("s3", endpoint_url=self.s3.url, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")

    # --- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        for proxy in (self.kafka_proxy, self.s3_proxy, self.pg_proxy):
            proxy.set_mode("pass")
        try:
            os.kill(self.broker.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        try:
            next(self._gen, None)
        finally:
            self._stop_deps()

    def _stop_deps(self) -> None:
        for e in (getattr(self, "s3", None), getattr(self, "broker", None)):
            if e is not None:
                e.stop()
        for p in (self.kafka_proxy, self.s3_proxy, self.pg_proxy):
            p.close()

    # --- processes -------------------------------------------------------------------------------
    def service_proc(self, service: str, timeout: float = 30.0) -> psutil.Process:
        """The supervisor's child running ``ingest.cli run <service>`` (waits for a restart to appear)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in psutil.Process(self.stack.proc.pid).children(recursive=True):
                try:
                    cmd = child.cmdline()
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue
                if "ingest.cli" in cmd and "run" in cmd and cmd[-1] == service and child.status() != "zombie":
                    return child
            time.sleep(0.1)
        raise AssertionError(f"no running {service} process under the supervisor")

    def wait_restarted(self, service: str, old_pid: int, timeout: float = 60.0) -> psutil.Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.service_proc(service, timeout=max(0.1, deadline - time.monotonic()))
            if proc.pid != old_pid:
                return proc
            time.sleep(0.1)
        raise AssertionError(f"{service} was not restarted")

    def run_extra(self, service: str, instance: str) -> subprocess.Popen[bytes]:
        """A second instance of a stage (another consumer in the same group)."""
        env = {**self.stack.env, "STAGE_INSTANCE_ID": instance, "METRICS_PORT": "0"}
        out = open(self.work_dir / f"{service}-{instance}.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "ingest.cli", "run", service], env=env, stdout=out,
                                stderr=subprocess.STDOUT)

    # --- load and observation --------------------------------------------------------------------
    def new_tenant(self) -> str:
        tenant = f"c{uuid.uuid4().hex[:10]}"
        asyncio.run(setup_tenants(self.direct_dsn, [tenant], self.mix))
        return tenant

    def load(self, tenant: str, *, rate: float, duration_s: float) -> Load:
        load = Load(self.stack.receiver, tenant, self.mix, rate=rate, duration_s=duration_s, seq_start=self._seq)
        self._seq += int(rate * duration_s) + 1  # sequence numbers make every body unique across loads
        return load

    def rows(self, tenant: str, grace_s: float) -> list[dict[str, Any]]:
        return asyncio.run(payload_rows(self.settings, tenant=tenant, grace=timedelta(seconds=grace_s)))

    def wait_accounted(self, tenant: str, acked: int, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Poll until every stored payload of ``tenant`` is in a bucket (none in flight)."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.rows(tenant, grace_s=3600)
            if len(rows) >= acked and not any(r["bucket"] == "in_flight" for r in rows):
                return rows
            time.sleep(0.5)
        return self.rows(tenant, grace_s=0)  # what is still missing now counts as lost

    def segment_bytes(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        """raw_id → sha256 of its bytes as read back from the S3 segment (directly, not via the proxy)."""
        meta = asyncio.run(_raw_meta(self.direct_dsn, [r["raw_id"] for r in rows]))
        bucket = self.stack.env["S3_BUCKET"]
        segments: dict[str, bytes] = {}
        out = {}
        for raw_id, (key, offset, length) in meta.items():
            if key not in segments:
                segments[key] = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            out[raw_id] = hashlib.sha256(segments[key][offset:offset + length]).hexdigest()
        return out

    def run_fault(self, name: str, inject: Callable[[], Any], heal: Callable[[Any], None], *, hold_s: float = 5.0,
                  rate: float = 8.0, before_s: float = 3.0, after_s: float = 5.0) -> FaultResult:
        tenant = self.new_tenant()
        # long enough for any heal; stopped ``after_s`` after the heal (and after a 2xx once healed)
        load = self.load(tenant, rate=rate, duration_s=before_s + hold_s + after_s + 60).start()
        time.sleep(before_s)
        injected_at = time.time()
        token = inject()
        time.sleep(max(0.0, hold_s - (time.time() - injected_at)))
        heal(token)
        healed_at = time.time()
        load.stop_after(after_s, until_ok_after=healed_at)
        sent = load.join()
        return self.verify(name, tenant, sent, injected_at, healed_at)

    def verify(self, name: str, tenant: str, sent: list[Sent], injected_at: float, healed_at: float) -> FaultResult:
        res = FaultResult(name, sent=len(sent))
        ok = [s for s in sent if s.ok]
        res.acknowledged = len(ok)
        res.refused_503 = sum(1 for s in sent if s.status == 503)
        res.transport_errors = sum(1 for s in sent if s.error)
        for s in sent:
            if s.status is not None and not s.ok:
                if s.status != 503 or not s.retry_after or not s.envelope:
                    res.violations.append(f"seq {s.seq} {s.template}: {s.status} retry-after={s.retry_after} "
                                          f"envelope={s.envelope}")
        rows = self.wait_accounted(tenant, len(ok))
        report = summarize(rows)
        res.stored = report["acknowledged"]
        res.lost = report["lost"] + report["in_flight"]
        res.accounted = res.stored - res.lost
        res.duplicate_deliveries = report["duplicates"]
        res.buckets = {k: report[k] for k in ("with_commands", "failed", "duplicates", "skipped", "lost",
                                              "in_flight", "partial")}
        if report["failed"]:
            res.buckets["failure_reasons"] = report["failure_reasons"]  # type: ignore[assignment]
        # durability: every 2xx is a stored payload with exactly the bytes sent, in the row and in S3
        stored_sha = asyncio.run(_raw_sha(self.direct_dsn, tenant))
        s3_sha = self.segment_bytes(rows)
        by_sha = {sha: raw_id for raw_id, sha in stored_sha.items()}
        for s in ok:
            raw_id = s.raw_id or by_sha.get(s.sha256)
            if raw_id is None or stored_sha.get(raw_id) != s.sha256:
                res.violations.append(f"2xx without the payload in the raw log: seq {s.seq} {s.template}")
            elif s3_sha.get(raw_id) != s.sha256:
                res.violations.append(f"2xx but S3 holds other bytes for raw {raw_id}")
        if res.lost:
            res.violations.append(f"lost {report['lost_sample'] or report['in_flight_sample']}")
        scan = scan_topics(self.settings, tenant=tenant)
        res.duplicate_commands = scan["duplicate_command_ids"]
        if scan["duplicate_command_ids"]:
            res.violations.append(f"duplicate commandIds: {scan['duplicate_sample'][:3]}")
        if not scan["complete"]:
            res.violations.append("topic scan did not finish")
        # recovery: first 2xx after the heal, and the last payload acked before it being accounted for
        after = [s.done_at for s in ok if s.done_at >= healed_at]
        res.ack_recovery_s = max(0.0, min(after) - healed_at) if after else float("nan")
        before = {s.raw_id or by_sha.get(s.sha256) for s in ok if s.done_at < healed_at}
        accounted = [r["accounted_at"].timestamp() for r in rows if r["raw_id"] in before and r["accounted_at"]]
        res.pipeline_recovery_s = max([0.0, *(t - healed_at for t in accounted)])
        return res


async def _raw_sha(dsn: str, tenant: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT raw_id::text, sha256 FROM raw_payloads WHERE tenant_id = $1", tenant)
    finally:
        await conn.close()
    return {r["raw_id"]: r["sha256"] for r in rows}


async def _raw_meta(dsn: str, raw_ids: list[str]) -> dict[str, tuple[str, int, int]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT raw_id::text, segment_key, segment_offset, segment_length FROM raw_payloads "
                                "WHERE raw_id = ANY($1::uuid[])", raw_ids)
    finally:
        await conn.close()
    return {r["raw_id"]: (r["segment_key"], r["segment_offset"], r["segment_length"]) for r in rows}


# --- the faults ----------------------------------------------------------------------------------
Fault = tuple[Callable[[ChaosStack], Any], Callable[[ChaosStack, Any], None], float]


def kill9(service: str) -> Fault:
    """SIGKILL the service mid-load; 'healed' at once: the supervisor restarts it (measured from the kill)."""
    def inject(c: ChaosStack) -> int:
        proc = c.service_proc(service)
        proc.send_signal(signal.SIGKILL)
        return int(proc.pid)

    def heal(c: ChaosStack, pid: int) -> None:
        pass  # the supervisor restarts it; the ledger proves it came back (nothing stays in flight)

    return inject, heal, 0.5


def broker_paused() -> Fault:
    return (lambda c: os.kill(c.broker.proc.pid, signal.SIGSTOP),
            lambda c, _: os.kill(c.broker.proc.pid, signal.SIGCONT), 6.0)


def proxy_fault(which: str, mode: str, hold_s: float, delay_s: float = 0.0) -> Fault:
    def proxy(c: ChaosStack) -> FaultProxy:
        return {"kafka": c.kafka_proxy, "s3": c.s3_proxy, "pg": c.pg_proxy}[which]

    return (lambda c: proxy(c).set_mode(mode, delay_s=delay_s), lambda c, _: proxy(c).set_mode("pass"), hold_s)


def rebalance(service: str) -> Fault:
    """A second instance joins the stage's group (a rebalance), works a while, then leaves (another one)."""
    def inject(c: ChaosStack) -> subprocess.Popen[bytes]:
        return c.run_extra(service, f"chaos-{uuid.uuid4().hex[:6]}")

    def heal(c: ChaosStack, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"second {service} instance did not stop within 15 s of SIGTERM")

    return inject, heal, 12.0


FAULTS: dict[str, Fault] = {
    **{f"kill-9 {s}": kill9(s) for s in (*STAGES, "receiver")},
    "broker paused": broker_paused(),
    "broker refuses": proxy_fault("kafka", "refuse", 6.0),
    "s3 stopped": proxy_fault("s3", "refuse", 5.0),
    "s3 slow (300 ms)": proxy_fault("s3", "delay", 6.0, delay_s=0.3),
    "pg connections cut": proxy_fault("pg", "reset", 4.0),
    "pg slow (100 ms)": proxy_fault("pg", "delay", 6.0, delay_s=0.1),
    "rebalance mapper": rebalance("mapper"),
    "rebalance command-writer": rebalance("command-writer"),
}
#: what ``make test`` runs (one of each kind: a process, a storage outage, a database outage)
SHORT = ("kill-9 command-writer", "s3 stopped", "pg connections cut")


def run(c: ChaosStack, name: str, *, rate: float = 8.0, before_s: float = 3.0, after_s: float = 5.0) -> FaultResult:
    inject, heal, hold = FAULTS[name]
    return c.run_fault(name, lambda: inject(c), lambda token: heal(c, token), hold_s=hold, rate=rate,
                       before_s=before_s, after_s=after_s)


@contextmanager
def chaos_stack(work_dir: Path) -> Iterator[ChaosStack]:
    c = ChaosStack(work_dir)
    try:
        yield c
    finally:
        c.close()


def main() -> None:
    """``python -m tests.chaos.harness [FAULT...]``: run faults, print one line each and a JSON summary."""
    import tempfile

    names = sys.argv[1:] or list(FAULTS)
    results = []
    with chaos_stack(Path(tempfile.mkdtemp(prefix="chaos-"))) as c:
        for name in names:
            r = run(c, name)
            print(r.line(), flush=True)
            results.append(r.as_dict())
    print(json.dumps(results, default=str))
    sys.exit(1 if any(r["violations"] for r in results) else 0)


if __name__ == "__main__":
    main()
