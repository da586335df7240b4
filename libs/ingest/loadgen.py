"""Signed load generator: a realistic provider mix, open- or closed-loop, bounded in count and time, loopback only."""
from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ingest.adapters.base import Headers, RawDelivery
from ingest.adapters.registry import adapter_class

CASES = Path(__file__).resolve().parents[2] / "tests" / "adapters" / "cases"
#: one secret works for every scheme in the mix (Standard Webhooks wants ``whsec_`` + base64)
DEFAULT_SECRET = "whsec_bG9hZGdlbi1zZWNyZXQ="
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Vary:
    """One value in a recorded body rewritten per request.

    ``context`` + ``value`` is the literal found in the body (context disambiguates short values);
    ``mode``: ``unique`` (a fresh value per request, so dedupe keeps it), ``entity`` (one of
    ``entities`` values, like a real catalog of SKUs: stays keyed and ordered per entity),
    ``add`` (an integer plus a per-request offset, e.g. an epoch), ``minute`` (an ISO date-time moved
    by a per-request number of minutes: keeps its format, stays a valid time), ``scope`` (one of
    ``scopes`` values named for this generator, e.g. a WMS facility) and ``sequence`` (the next number
    of the request's tenant + scope: a facility numbers its events 1, 2, 3… as a real WMS does, so the
    resolver's sequence check sees them in order).
    """

    context: str
    value: str
    mode: str = "unique"


@dataclass(frozen=True)
class Spec:
    provider: str
    case: str
    weight: int
    vary: tuple[Vary, ...] = ()
    unique_headers: tuple[str, ...] = ()  # header values made unique per request (event ids sent as headers)


_WMS_SCOPE = (Vary('"facility_id": "', "DS-BLR-KOR-01", "scope"),)
#: A quick-commerce/restaurant day: stock changes dominate, then availability, catalog, store and order status.
DEFAULT_MIX: tuple[Spec, ...] = (
    Spec("inhouse-wms", "stock.adjusted", 16, (Vary('"event_id": "', "evt_01KF3Q8Z6Y2W7N4M5P6R7S8T9V"),
                                               Vary('"sku": "', "AMUL-TAAZA-500", "entity"), *_WMS_SCOPE,
                                               Vary('"sequence": ', "18231", "sequence"))),
    Spec("inhouse-wms", "grn.received", 4, (Vary('"event_id": "', "evt_01KF3QA2B3C4D5E6F7G8H9J0KM"),
                                            Vary('"sku": "', "SKU-LIFEBUOY-125G", "entity"), *_WMS_SCOPE,
                                            Vary('"sequence": ', "18252", "sequence"))),
    Spec("inhouse-wms", "pick.shortage", 4, (Vary('"event_id": "', "evt_01KF3QE6F7G8H9J0KMNPQRSTVW"),
                                             Vary('"sku": "', "AMUL-TAAZA-1000", "entity"), *_WMS_SCOPE,
                                             Vary('"sequence": ', "18260", "sequence"))),
    Spec("shopify", "inventory_levels.update", 12, (Vary("", "46011223344501", "entity"),),
         ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id")),
    Spec("unicommerce", "updateInventory", 8, (Vary('"productId": "', "QC-PRD-200877", "entity"),
                                               Vary('"inventory": "', "15"))),
    Spec("deliverect", "snooze", 6, (Vary('"plu": "', "P-BURG-VEG", "entity"),
                                     Vary('"snoozeStart": "', "2025-05-14T09:30:00Z", "minute"))),
    Spec("urbanpiper", "item_state_toggle", 6, (Vary('"reference_id": "', "f3c0d6a2b1e94c8f8a7d6e5f4c3b2a19"),
                                                Vary('"ref_id": "', "1001-abcde", "entity"))),
    Spec("petpooja", "item_out_of_stock", 6, (Vary('"', "118829149", "entity"),
                                              Vary('"customTurnOnTime": "', "2025-05-14 22:00", "minute"))),
    Spec("lightspeed", "SALES_RESTRICTION_UPDATED.restricted", 5,
         (Vary('"sku": "', "BURG-CHE", "entity"),
          Vary('"countUpdatedAt": "', "2025-05-14T12:05:00.000+00:00", "minute")),
         ("X-Lightspeed-Idempotency-Key",)),
    Spec("revel", "inout.stock", 5, (Vary('"id": ', "1234", "entity"), Vary('"barcode": "', "0123456789012", "entity")),
         ("X-Revel-Event-Id", "X-Revel-Message-Id")),
    Spec("atlas", "stock.updated", 5, (Vary('"event_at": ', "1747224420", "add"),
                                       Vary('"item_id": ', "380", "entity"))),
    Spec("posist", "item_stock_update", 3, (Vary('"item_id": "', "PX-101", "entity"),
                                            Vary('"timestamp": "', "2025-05-14T12:00:00Z", "minute"))),
    Spec("dotpe", "ITEM_AVAILABILITY", 3, (Vary('"eventId": "', "evt-0001"),
                                           Vary('"itemId": "', "DP-ITEM-44", "entity"))),
    Spec("woocommerce", "product.updated", 3, (Vary('"sku":"', "TATA-SALT-1KG", "entity"),
                                               Vary('"date_modified_gmt":"', "2026-01-14T11:42:40", "minute"))),
    Spec("deliverect", "order_status_update", 3, (Vary('"orderId": "', "6644b0e1aa1b2c0012f0a777"),)),
    Spec("urbanpiper", "order_status_update", 2, (Vary('"order_id": ', "412345678", "add"),)),
)


@dataclass(frozen=True)
class Template:
    spec: Spec
    path: str
    body: bytes
    headers: dict[str, str]  # recorded non-auth headers (topic, shop domain, content type)
    options: dict[str, Any]  # per-source options the recorded case needs (e.g. a basic-auth user name)

    @property
    def key(self) -> str:
        return f"{self.spec.provider}/{self.spec.case}"


def _load_template(spec: Spec, cases: Path = CASES) -> Template:
    case_dir = cases / spec.provider / spec.case
    body = (case_dir / "body.raw").read_bytes()
    meta = json.loads((case_dir / "meta.json").read_text()) if (case_dir / "meta.json").exists() else {}
    recorded = json.loads((case_dir / "headers.json").read_text()) if (case_dir / "headers.json").exists() else {}
    cls = adapter_class(spec.provider)
    auth_names = {k.lower() for k in cls().sign(body, secret=DEFAULT_SECRET, timestamp=0, msg_id="m")}
    headers = {k: v for k, v in recorded.items() if not k.startswith("_") and k.lower() not in auth_names}
    headers.setdefault("Content-Type", "application/json")
    family = meta.get("family", "inventory")
    if family not in {"menu", "inventory", "store-status", "order-status", "stock", "catalog"}:
        family = "stock" if cls.kind == "erp" else "inventory"
    for v in spec.vary:
        if (v.context + v.value).encode() not in body:
            raise ValueError(f"{spec.provider}/{spec.case}: {v.context + v.value!r} is not in the recorded body")
    return Template(spec, f"/v1/integrations/{cls.kind}/{spec.provider}/webhooks/{family}", body, headers,
                    dict(meta.get("options", {})))


#: per process: every Mix of a process shares it, and run_load draws sequence numbers from one process-wide
#: counter, so successive runs in one process never repeat a dedupe key (a repeat would measure the
#: duplicate path, not the pipeline); two processes collide only with the same nonce (1 in 1,000)
PROCESS_NONCE = random.SystemRandom().randrange(1000)


class _Sequence:
    """The process-wide request sequence: drawn one by one, or reserved in blocks for client processes."""

    def __init__(self) -> None:
        self.next = 0

    def draw(self, limit: int) -> Iterator[int]:
        for _ in range(limit):
            self.next += 1
            yield self.next - 1

    def reserve(self, n: int) -> int:
        self.next += n
        return self.next - n


_SEQ = _Sequence()
#: room per nonce for ``add``/``minute`` values: more requests than one process sends
SPAN = 1_000_000


def _rewrite(value: str, mode: str, seq: int, entity: int, nonce: int) -> str:
    if mode == "entity":
        return f"{value}{entity:04d}" if value.isdigit() else f"{value}-{entity:04d}"
    if mode == "add":
        return str(int(value) + nonce * SPAN + seq)
    if mode == "minute":
        # the first 16 characters are always YYYY-MM-DD?HH:MM; the rest (seconds, fraction, zone) stays
        moved = datetime.fromisoformat(value[:16]) + timedelta(minutes=nonce * SPAN + seq)
        return moved.strftime(f"%Y-%m-%d{value[10]}%H:%M") + value[16:]
    return f"{value}{nonce:06d}{seq:08d}" if value.isdigit() else f"{value}-{nonce:06d}-{seq:08d}"


@dataclass
class Request:
    tenant: str
    template: str
    path: str
    headers: dict[str, str]
    body: bytes


class Mix:
    """Weighted templates → signed requests; every request unique to dedupe, entities drawn from a catalog."""

    def __init__(self, specs: Sequence[Spec] = DEFAULT_MIX, *, secret: str = DEFAULT_SECRET, entities: int = 500,
                 scopes: int = 100, seed: int = 7, nonce: int | None = None) -> None:
        self.templates = [_load_template(s) for s in specs]
        self.secret = secret
        self.entities = entities
        self.scopes = scopes
        self.nonce = nonce if nonce is not None else PROCESS_NONCE
        # scopes are this generator's own (two generators never share a facility's numbering)
        self.tag = uuid.uuid4().hex[:6]
        self._sequences: dict[tuple[str, str], int] = {}
        self._rng = random.Random(seed)
        self._weights = [t.spec.weight for t in self.templates]
        # signing may depend on per-source options (a basic-auth user name): one adapter per template
        self._signers = {t.key: adapter_class(t.spec.provider)(options=t.options) for t in self.templates}

    @property
    def providers(self) -> list[str]:
        return sorted({t.spec.provider for t in self.templates})

    def source_options(self, provider: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for t in self.templates:
            if t.spec.provider == provider:
                merged.update(t.options)
        return merged

    def body(self, template: Template, seq: int, tenant: str = "-") -> bytes:
        entity = self._rng.randrange(self.entities)
        body = template.body
        scope = ""
        for v in template.spec.vary:
            if v.mode == "scope":
                new = scope = f"{v.value}-{self.tag}-{self._rng.randrange(self.scopes):03d}"
            elif v.mode == "sequence":
                key = (tenant, scope)
                new = str(self._sequences[key] + 1) if key in self._sequences else "1"
                self._sequences[key] = int(new)
            else:
                new = _rewrite(v.value, v.mode, seq, entity, self.nonce)
            body = body.replace((v.context + v.value).encode(), (v.context + new).encode())
        return body

    def request(self, seq: int, tenant: str, *, template: Template | None = None, now: int | None = None) -> Request:
        t = template or self._rng.choices(self.templates, self._weights)[0]
        body = self.body(t, seq, tenant)
        msg_id = f"lg_{self.nonce:06d}_{seq:08d}"
        headers = dict(t.headers)
        for name in t.spec.unique_headers:
            headers[name] = f"{headers.get(name, 'id')}-{self.nonce:06d}-{seq:08d}"
        headers.update(self._signers[t.key].sign(
            body, secret=self.secret, timestamp=now if now is not None else int(time.time()), msg_id=msg_id))
        return Request(tenant, t.key, t.path, headers, body)


def check_mix(mix: Mix, *, tenant: str = "acme", n: int = 3) -> dict[str, list[str]]:
    """For every template: ``n`` requests verify with the secret and carry ``n`` distinct dedupe keys.

    Returns template → dedupe keys; raises ``ValueError`` naming the first template that would be signed
    wrong or dropped by dedupe (the mix would then measure the duplicate path, not the pipeline).
    """
    from datetime import timezone

    out: dict[str, list[str]] = {}
    seq = 0
    for t in mix.templates:
        adapter = adapter_class(t.spec.provider)([mix.secret], options=t.options)
        keys = []
        for _ in range(n):
            seq += 1
            r = mix.request(seq, tenant, template=t)
            adapter.verify_signature(Headers(r.headers), r.body)
            family = t.path.rsplit("/", 1)[1]
            delivery = RawDelivery(body=r.body, headers=Headers(r.headers), raw_id=str(uuid.uuid4()),
                                   tenant_id=tenant, provider=t.spec.provider, family=family,
                                   received_at=datetime.now(timezone.utc), route=t.path,
                                   content_type=r.headers.get("Content-Type", ""))
            keys.append(adapter.dedupe_key(adapter.parse(delivery)))
        if len(set(keys)) != n:
            raise ValueError(f"{t.key}: requests share a dedupe key: {keys}")
        out[t.key] = keys
    return out


# --- tenants and sources ---------------------------------------------------------------------------
async def setup_tenants(dsn: str, tenants: Iterable[str], mix: Mix, *, secrets_key: str | None = None) -> None:
    """Each tenant (auto-creating items) with a source per provider of the mix, all on ``mix.secret``."""
    from ingest.crypto import SecretBox
    from ingest.db import repositories
    from ingest.db.pool import create_pool

    pool = await create_pool(dsn, max_size=2)
    box = SecretBox(secrets_key)
    try:
        for tenant in tenants:
            await repositories.add_tenant(pool, tenant, auto_create_items=True, default_currency="INR")
            for provider in mix.providers:
                await repositories.add_source_secret(pool, box, tenant, provider, mix.secret,
                                                     options=mix.source_options(provider))
    finally:
        await pool.close()


# --- the run -------------------------------------------------------------------------------------
@dataclass
class Ack:
    raw_id: str
    tenant: str
    template: str
    acked_at: float  # wall clock (time.time()) when the 202 arrived: the e2e latency's start


@dataclass
class LoadResult:
    sent: int = 0
    elapsed_s: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # one per answered request
    acks: list[Ack] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors by exception name
    offered_rps: float | None = None
    acked_without_id: int = 0  # 2xx vendor-specific replies (e.g. PetPooja's) that name no rawId
    client_cpu_s: float = 0.0  # the generator's own CPU time: near elapsed_s means the client was the limit

    @property
    def acked(self) -> int:
        return len(self.acks)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.by_status.items() if 200 <= s < 300)

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float | None:
        return percentile(self.latencies_ms, p)

    def summary(self) -> dict[str, Any]:
        return {"sent": self.sent, "acked": self.acked, "ok": self.ok, "elapsed_s": round(self.elapsed_s, 3),
                "offered_rps": self.offered_rps, "throughput_rps": round(self.throughput_rps, 1),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "acked_without_id": self.acked_without_id, "client_cpu_s": round(self.client_cpu_s, 2),
                "errors": dict(self.errors),
                **{f"p{p}_ms": _round(self.percentile(p)) for p in (50, 95, 99)}}

    def merge(self, other: LoadResult) -> LoadResult:
        return LoadResult(self.sent + other.sent, max(self.elapsed_s, other.elapsed_s),
                          self.by_status + other.by_status, self.latencies_ms + other.latencies_ms,
                          self.acks + other.acks, self.errors + other.errors,
                          None if self.offered_rps is None else self.offered_rps + (other.offered_rps or 0),
                          self.acked_without_id + other.acked_without_id, self.client_cpu_s + other.client_cpu_s)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (no interpolation: the figure is a latency some request really had)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _loopback(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.hostname not in LOOPBACK:
        raise ValueError(f"the load generator targets loopback only, not {parts.hostname!r}")
    return parts.hostname, parts.port or 80


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time (no pipelining).

    Lighter than aiohttp's client by a factor of several: on a 2-core machine the generator shares the CPU
    with the server it measures, so every microsecond it spends is taken from the figure.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter and not self._waiter.done():
            self._waiter.set_exception(ConnectionResetError("server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            self._waiter.set_exception(ConnectionError("response without Content-Length"))
            return
        line_end = head.find(b"\r\n", i + 2)
        length = int(head[i + 17:line_end if line_end > 0 else None])
        if len(self._buf) < end + 4 + length:
            return
        status = int(head[9:12])
        body = bytes(self._buf[end + 4:end + 4 + length])
        del self._buf[:end + 4 + length]
        if b"\r\nconnection: close" in head and self.transport:
            self.transport.close()
        waiter, self._waiter = self._waiter, None
        if not waiter.done():
            waiter.set_result((status, body))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter


class _RawClient:
    """At most ``limit`` keep-alive connections to one loopback host:port."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_RawConnection] = []
        self._slots = asyncio.Semaphore(limit)

    async def post(self, path: str, headers: dict[str, str], body: bytes,
                   timeout: float = 30.0) -> tuple[int, bytes]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        data = f"POST {path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        async with self._slots:
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            if conn is None:
                _, conn = await asyncio.get_running_loop().create_connection(_RawConnection, self.host, self.port)
            try:
                status, payload = await asyncio.wait_for(conn.request(data), timeout)
            except BaseException:
                if conn.transport:
                    conn.transport.close()
                raise
            if not conn.closed:
                self._idle.append(conn)
            return status, payload

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport:
                conn.transport.close()
        self._idle.clear()


async def run_load(base_url: str, *, tenants: Sequence[str], mix: Mix | None = None, rate: float | None = None,
                   concurrency: int = 64, total: int = 1000, duration_s: float = 30.0,
                   seq_start: int | None = None, warmup: int = 0, client: str = "raw") -> LoadResult:
    """Send up to ``total`` signed webhooks for at most ``duration_s`` seconds.

    ``rate`` set: open loop, request i is due at start + i/rate whatever the answers do; its latency counts
    from when it was due (so a stalled server is not hidden by the client waiting: no coordinated omission),
    with at most ``concurrency`` connections. ``rate`` None: closed loop, ``concurrency`` workers each sending
    the next request as soon as the previous one is answered. ``warmup`` requests go first, unrecorded.
    ``client``: ``raw`` (a minimal keep-alive HTTP/1.1 client, the default: cheap enough not to be the
    bottleneck) or ``aiohttp``.
    """
    host, port = _loopback(base_url)
    mix = mix or Mix()
    result = LoadResult(offered_rps=rate)
    tenant_hosts = {t: f"{t}.localhost:{port}" for t in tenants}
    tenants = list(tenants)
    counter = iter(range(seq_start, seq_start + warmup + total)) if seq_start is not None else \
        _SEQ.draw(warmup + total)
    session: aiohttp.ClientSession | None = None
    raw = _RawClient(host, port, concurrency) if client == "raw" else None
    if raw is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                        timeout=aiohttp.ClientTimeout(total=30),
                                        skip_auto_headers=("User-Agent",), auto_decompress=False)

    async def post(path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if raw is not None:
            return await raw.post(path, headers, body)
        assert session is not None
        async with session.post(base_url + path, data=body, headers=headers) as resp:
            return resp.status, await resp.read()

    async def one(seq: int, due: float | None, record: bool) -> None:
        tenant = tenants[seq % len(tenants)]
        req = mix.request(seq, tenant)
        req.headers["Host"] = tenant_hosts[tenant]
        start = due if due is not None else time.perf_counter()
        try:
            status, payload = await post(req.path, req.headers, req.body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if record:
                result.errors[type(exc).__name__] += 1
            return
        if not record:
            return
        now = time.perf_counter()
        result.by_status[status] += 1
        result.latencies_ms.append((now - start) * 1000)
        if 200 <= status < 300:
            raw_id = json.loads(payload).get("rawId") if status == 202 else None
            if raw_id:
                result.acks.append(Ack(raw_id, tenant, req.template, time.time()))
            else:
                result.acked_without_id += 1

    try:
        for _ in range(warmup):
            await one(next(counter), None, False)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + duration_s
        if rate:
            pending: set[asyncio.Task[None]] = set()
            for i, seq in enumerate(counter):
                due = t0 + i / rate
                if due > deadline:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(seq, due, True))
                pending.add(task)
                task.add_done_callback(pending.discard)
                result.sent += 1
            if pending:
                await asyncio.wait(pending, timeout=max(1.0, deadline + 30 - time.perf_counter()))
        else:
            async def worker() -> None:
                for seq in counter:
                    if time.perf_counter() > deadline:
                        return
                    result.sent += 1
                    await one(seq, None, True)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed_s = time.perf_counter() - t0
        result.client_cpu_s = time.process_time() - cpu0
    finally:
        if raw is not None:
            raw.close()
        if session is not None:
            await session.close()
    return result


def run_load_processes(base_url: str, *, processes: int, tenants: Sequence[str], rate: float | None = None,
                       concurrency: int = 64, total: int = 1000, duration_s: float = 30.0,
                       warmup: int = 0) -> LoadResult:
    """``run_load`` split over ``processes`` client processes (one Python client tops out near one core)."""
    from concurrent.futures import ProcessPoolExecutor

    if processes <= 1:
        return _run_sync(base_url, tenants, rate, concurrency, total, duration_s, None, warmup)
    share = math.ceil(total / processes)
    base = _SEQ.reserve(processes * (share + warmup))  # the children share this process's nonce
    with ProcessPoolExecutor(processes) as ex:
        futures = [ex.submit(_run_sync, base_url, tenants, rate / processes if rate else None,
                             max(1, concurrency // processes), share, duration_s, base + i * (share + warmup),
                             warmup)
                   for i in range(processes)]
        results = [f.result() for f in futures]
    merged = results[0]
    for r in results[1:]:
        merged = merged.merge(r)
    return merged


def _run_sync(base_url: str, tenants: Sequence[str], rate: float | None, concurrency: int, total: int,
              duration_s: float, seq_start: int | None, warmup: int) -> LoadResult:
    _install_uvloop()
    return asyncio.run(run_load(base_url, tenants=tenants, rate=rate, concurrency=concurrency, total=total,
                                duration_s=duration_s, seq_start=seq_start, warmup=warmup))


def _install_uvloop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # the stdlib loop is slower but correct
        pass
