"""The load generator's mix: every template signs right, survives dedupe, and yields commands."""
from __future__ import annotations

import asyncio

import pytest

from ingest.canonical.mapping import MappingContext, TenantSettings, auto_canonical_id
from ingest.loadgen import DEFAULT_MIX, Mix, Spec, Vary, _rewrite, check_mix, percentile, run_load
from ingest.adapters.base import Headers, RawDelivery
from ingest.adapters.registry import adapter_class


def test_every_template_verifies_and_gets_distinct_dedupe_keys() -> None:
    keys = check_mix(Mix(), n=4)
    assert set(keys) == {f"{s.provider}/{s.case}" for s in DEFAULT_MIX}


def test_every_template_becomes_commands() -> None:
    from datetime import datetime, timezone

    mix = Mix()
    for t in mix.templates:
        req = mix.request(1, "acme", template=t)
        adapter = adapter_class(t.spec.provider)([mix.secret], options=t.options)
        delivery = RawDelivery(body=req.body, headers=Headers(req.headers), raw_id="00000000-0000-4000-8000-0000000000aa",
                               tenant_id="acme", provider=t.spec.provider, family=t.path.rsplit("/", 1)[1],
                               received_at=datetime.now(timezone.utc), route=t.path,
                               tenant=TenantSettings("acme", True, default_currency="INR"))
        source = adapter.parse(delivery)
        keys = adapter.mapping_keys(source)
        ctx = MappingContext("acme", t.spec.provider,
                             {k: auto_canonical_id("acme", t.spec.provider, k) for k in keys},
                             TenantSettings("acme", True, default_currency="INR"))
        assert adapter.to_canonical_commands(source, ctx), t.key


def test_a_value_missing_from_the_recorded_body_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the recorded body"):
        Mix([Spec("inhouse-wms", "stock.adjusted", 1, (Vary('"sku": "', "NO-SUCH-SKU"),))])


def test_rewrites_keep_formats() -> None:
    assert _rewrite("2025-05-14 22:00", "minute", 61, 0, 0) == "2025-05-14 23:01"
    assert _rewrite("2025-05-14T12:05:00.000+00:00", "minute", 1, 0, 0) == "2025-05-14T12:06:00.000+00:00"
    assert _rewrite("380", "entity", 5, 12, 3) == "3800012"
    assert _rewrite("SKU-A", "entity", 5, 12, 3) == "SKU-A-0012"
    assert _rewrite("1747224420", "add", 5, 0, 2) == str(1747224420 + 2_000_000 + 5)


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) is None


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        asyncio.run(run_load("http://10.1.2.3:8080", tenants=["a"], total=1))


def test_a_facility_numbers_its_events_consecutively_per_tenant() -> None:
    import json as _json

    mix = Mix([Spec("inhouse-wms", "stock.adjusted", 1, (
        Vary('"event_id": "', "evt_01KF3Q8Z6Y2W7N4M5P6R7S8T9V"),
        Vary('"facility_id": "', "DS-BLR-KOR-01", "scope"), Vary('"sequence": ', "18231", "sequence")))],
        scopes=3)
    seen: dict[tuple[str, str], list[int]] = {}
    for seq in range(60):
        tenant = "a" if seq % 2 else "b"
        body = _json.loads(mix.request(seq, tenant).body)
        seen.setdefault((tenant, body["facility_id"]), []).append(body["sequence"])
    assert len(seen) == 6
    for numbers in seen.values():
        assert numbers == list(range(1, len(numbers) + 1))


def test_successive_runs_in_one_process_never_repeat_a_dedupe_key() -> None:
    from ingest.loadgen import _SEQ

    def keys(mix: Mix, seqs: list[int]) -> set[str]:
        from datetime import datetime, timezone

        out = set()
        for seq in seqs:
            req = mix.request(seq, "acme")
            t = next(t for t in mix.templates if t.key == req.template)
            adapter = adapter_class(t.spec.provider)([mix.secret], options=t.options)
            delivery = RawDelivery(body=req.body, headers=Headers(req.headers),
                                   raw_id="00000000-0000-4000-8000-0000000000aa", tenant_id="acme",
                                   provider=t.spec.provider, family=t.path.rsplit("/", 1)[1],
                                   received_at=datetime.now(timezone.utc), route=t.path)
            out.add(adapter.dedupe_key(adapter.parse(delivery)))
        return out

    first = keys(Mix(), list(_SEQ.draw(300)))
    second = keys(Mix(), list(_SEQ.draw(300)))  # a new generator, as each bench phase makes
    assert len(first) == 300 and len(second) == 300
    assert not first & second
