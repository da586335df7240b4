"""The views' per-batch metric updates equal the per-event ones they replace."""
from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from ingest.observability.metrics import LATENCY_BUCKETS
from services.views.consumer import child, observe_many


def _samples(h: Histogram) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value for m in h.collect() for s in m.samples
            if not s.name.endswith("_created")}


@given(st.lists(st.tuples(st.sampled_from([0.0, *LATENCY_BUCKETS]) | st.floats(0, 1e6), st.integers(1, 50)),
                max_size=40))
def test_observe_many_is_observe_per_event(amounts: list[tuple[float, int]]) -> None:
    one, many = (Histogram("h", "h", ["stage"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
                 for _ in range(2))
    child = one.labels("views")
    for amount, n in amounts:
        for _ in range(n):
            child.observe(amount)
    observe_many(many.labels("views"), amounts)
    a, b = _samples(one), _samples(many)
    assert a.keys() == b.keys()
    for key, value in a.items():  # bucket counts exactly; the sum as floats add up in another order
        assert math.isclose(value, b[key], rel_tol=1e-9, abs_tol=1e-9), key


def test_observe_many_falls_back_to_observe() -> None:
    seen: list[float] = []

    class Plain:
        def observe(self, amount: float) -> None:
            seen.append(amount)

    observe_many(Plain(), [(0.5, 2), (3.0, 1)])
    assert seen == [0.5, 0.5, 3.0]


def test_child_is_labels_once() -> None:
    h = Histogram("hc", "h", ["stage"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    assert child(h, "views") is h.labels("views") is child(h, "views")
    assert child(h, "other") is h.labels("other") is not child(h, "views")
