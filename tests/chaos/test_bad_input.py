"""Bad input cannot hurt: fuzzed bodies and headers end as a classified IngestError or as commands."""
from __future__ import annotations

import json
import signal
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.adapters.base import Headers, RawDelivery
from ingest.adapters.registry import adapter_class, registered_providers
from ingest.canonical.mapping import MappingContext, TenantSettings, auto_canonical_id
from ingest.errors import IngestError
from tests.adapters.cases import RAW_ID, RECEIVED_AT, TENANT, Case, load_cases

CASES = load_cases()
SEEDS: dict[str, list[Case]] = {p: [c for c in CASES if c.provider == p] for p in registered_providers()}
FAMILIES = ["menu", "inventory", "store-status", "order-status", "stock", "catalog", "import"]
#: every fuzzed example must finish well within this (a hang is a failure, not a slow test)
EXAMPLE_TIMEOUT_S = 5

WEIRD_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", " ", "null", "0", "-1", "1e999", "NaN", "2026-13-45T99:99:99Z", "\u0000", "\ud7ff",
                     "x" * 100_000]),
)
JSON_VALUES = st.recursive(WEIRD_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """SIGALRM: a parser stuck in a loop fails the example instead of hanging the suite."""
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def dumps(value: Any) -> bytes:
    # allow_nan: NaN/Infinity literals are exactly the input we want to send
    return json.dumps(value, allow_nan=True).encode("utf-8", errors="surrogatepass")


def mutate(doc: Any, path: list[int], replacement: Any) -> Any:
    """Replace the node that ``path`` walks to (indices modulo the children) with ``replacement``."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return replacement
    if isinstance(doc, dict):
        keys = list(doc)
        key = keys[path[0] % len(keys)]
        return {**doc, key: mutate(doc[key], path[1:], replacement)}
    i = path[0] % len(doc)
    return [*doc[:i], mutate(doc[i], path[1:], replacement), *doc[i + 1:]]


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def duplicate_keys(body: bytes) -> bytes:
    """The first key of the top-level object, repeated with another value (JSON allows it, parsers differ)."""
    text = body.decode("utf-8", errors="replace").lstrip()
    if not text.startswith("{"):
        return body
    return ('{"event_id": 1, "event_id": "dup", "id": [], "id": {},' + text[1:]).encode()


@st.composite
def bodies(draw: st.DrawFn, provider: str) -> bytes:
    seeds = SEEDS.get(provider) or []
    seed = draw(st.sampled_from(seeds)).body if seeds else b"{}"
    kind = draw(st.sampled_from(["mutate", "truncate", "utf8", "deep", "dupkeys", "random", "huge", "json",
                                 "csv"]))
    if kind == "mutate":
        try:
            doc = json.loads(seed)
        except ValueError:
            return seed[: draw(st.integers(0, len(seed)))]
        for _ in range(draw(st.integers(1, 3))):
            doc = mutate(doc, draw(st.lists(st.integers(0, 50), max_size=6)), draw(JSON_VALUES))
        return dumps(doc)
    if kind == "truncate":
        return seed[: draw(st.integers(0, max(0, len(seed) - 1)))]
    if kind == "utf8":
        at = draw(st.integers(0, len(seed)))
        return seed[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xf8\x88"])) \
            + seed[at:]
    if kind == "deep":
        return deep(draw(st.sampled_from([100, 1000, 50_000])))
    if kind == "dupkeys":
        return duplicate_keys(seed)
    if kind == "huge":
        return draw(st.sampled_from([b'{"quantity": ' + b"9" * 5000 + b"}", b'{"x": "' + b"a" * 2_000_000 + b'"}',
                                     b"[" + b"1e999," * 1000 + b"1]", b'{"price": NaN, "qty": Infinity}',
                                     b'{"a": -Infinity}']))
    if kind == "json":
        return dumps(draw(JSON_VALUES))
    if kind == "csv":
        return draw(st.text(alphabet=string.printable, max_size=300)).encode()
    return draw(st.binary(max_size=2000))


HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Event-Id",
                     "X-Wc-Webhook-Topic", "X-Wc-Webhook-Resource", "X-Wc-Webhook-Event", "webhook-id",
                     "X-Event-Type", "Idempotency-Key", "X-Api-Key"]),
    st.one_of(st.text(max_size=30), st.sampled_from(["products/create", "inventory_levels/update",
                                                     "application/json", "text/csv", "product.updated"])),
    max_size=4)


def run_adapter(provider: str, body: bytes, headers: dict[str, str], family: str, route: str) -> None:
    adapter = adapter_class(provider)()
    delivery = RawDelivery(body=body, headers=Headers(headers), raw_id=RAW_ID, tenant_id=TENANT, provider=provider,
                           family=family, received_at=RECEIVED_AT, route=route,
                           content_type=headers.get("Content-Type", "application/json"),
                           tenant=TenantSettings(TENANT, True, "Asia/Kolkata", "INR"))
    with time_limit(EXAMPLE_TIMEOUT_S):
        try:
            source = adapter.parse(delivery)
            adapter.dedupe_key(source)
            keys = adapter.mapping_keys(source)
            adapter.declared_mappings(source)
            ids = {k: auto_canonical_id(TENANT, provider, k) for k in keys}
            commands = adapter.to_canonical_commands(source, MappingContext(TENANT, provider, ids,
                                                                            delivery.tenant))
            for c in commands:
                c.to_record()  # what the transformer encodes
        except IngestError:
            return  # classified: a failure record or a counted skip
        except Exception as exc:  # noqa: BLE001 — the assertion below names it
            raise AssertionError(f"{provider}: unclassified {type(exc).__name__}: {str(exc)[:300]}") from exc


@pytest.mark.parametrize("provider", registered_providers())
def test_adapter_never_raises_unclassified(provider: str) -> None:
    families = sorted({c.family for c in SEEDS.get(provider, [])} | set(FAMILIES))
    routes = sorted({c.meta.get("route", "") for c in SEEDS.get(provider, [])} | {""})

    @settings(max_examples=100, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies(provider), headers=HEADERS, family=st.sampled_from(families), route=st.sampled_from(routes),
           seed_headers=st.booleans())
    def check(body: bytes, headers: dict[str, str], family: str, route: str, seed_headers: bool) -> None:
        base = dict(SEEDS[provider][0].headers) if seed_headers and SEEDS.get(provider) else {}
        run_adapter(provider, body, {**base, **headers}, family, route)

    check()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_recorded_case_survives_every_single_leaf_replaced(case: Case) -> None:
    """Deterministic sweep: each leaf of each recorded body replaced by each hostile value."""
    try:
        doc = json.loads(case.body)
    except ValueError:
        pytest.skip("not a JSON case")
    hostile: list[Any] = [None, True, -1, 10 ** 30, float("nan"), float("inf"), "", "x" * 10_000, [], {}, "1e999"]
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                walk(v, [*path, i])
        paths.append(path)

    walk(doc, [])

    def replace(node: Any, path: list[Any], value: Any) -> Any:
        if not path:
            return value
        if isinstance(node, dict):
            return {**node, path[0]: replace(node[path[0]], path[1:], value)}
        return [*node[:path[0]], replace(node[path[0]], path[1:], value), *node[path[0] + 1:]]

    for path in paths[:150]:
        for value in hostile:
            run_adapter(case.provider, dumps(replace(doc, path, value)), case.headers, case.family,
                        case.meta.get("route", ""))


HOSTILE_BODIES = {
    "invalid utf-8": b'{"event_id": "\xff\xfe", "sku": "\xc3\x28"}',
    "truncated": b'{"event_id": "evt_1", "data": {"sku": "A", "quantity_after": "4',
    "deep": deep(5000),
    "huge number": b'{"event_id": "evt_2", "available": ' + b"9" * 4000 + b"}",
    "nan": b'{"event_id": "evt_3", "available": NaN, "quantity": Infinity}',
    "wrong types": b'{"event_id": [], "data": "x", "inventory_item_id": {"a": null}, "operations": 7}',
    "duplicate keys": b'{"event_id": "a", "event_id": "b", "sku": 1, "sku": {}}',
    "gigantic string": b'{"event_id": "' + b"x" * 3_000_000 + b'"}',
    "empty": b"",
}


@pytest.mark.chaos
def test_receiver_and_pipeline_classify_hostile_bodies(chaos: Any) -> None:
    """Signed hostile bodies for every template of the load mix: a clear 2xx/4xx, never a 5xx; every stored
    one ends as a classified failure or a skip (never ``unexpected_exception``); the stages keep consuming."""
    import time
    import urllib.error
    import urllib.request

    tenant = chaos.new_tenant()
    port = chaos.stack.receiver.rsplit(":", 1)[1]
    statuses: dict[str, int] = {}
    for t in chaos.mix.templates:
        signer = chaos.mix._signers[t.key]
        for name, body in HOSTILE_BODIES.items():
            headers = {**t.headers, **signer.sign(body, secret=chaos.mix.secret, timestamp=int(time.time()),
                                                  msg_id=f"hostile-{name}"), "Host": f"{tenant}.localhost:{port}"}
            req = urllib.request.Request(chaos.stack.receiver + t.path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    statuses[f"{t.key} {name}"] = resp.status
            except urllib.error.HTTPError as exc:
                statuses[f"{t.key} {name}"] = exc.code
                envelope = json.loads(exc.read() or b"{}")
                assert envelope["error"]["code"] == exc.code, envelope
    assert all(s < 500 for s in statuses.values()), {k: s for k, s in statuses.items() if s >= 500}
    stored = sum(1 for s in statuses.values() if 200 <= s < 300)
    assert stored > 0
    rows = chaos.wait_accounted(tenant, 0, timeout=120)
    assert len(rows) >= sum(1 for s in statuses.values() if s == 202)
    assert not [r for r in rows if r["bucket"] in ("lost", "in_flight")]
    unexpected = [r for r in rows if r["failure"] and "unexpected" in r["failure"]]
    assert not unexpected, unexpected[:5]
    # the stages are still consuming: a good payload goes all the way
    sent = chaos.load(tenant, rate=4.0, duration_s=1.5).start().join()
    rows = chaos.wait_accounted(tenant, len(rows) + sum(1 for s in sent if s.ok), timeout=90)
    assert any(r["bucket"] == "with_commands" for r in rows)
