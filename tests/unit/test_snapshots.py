"""Full stock snapshots (in-house WMS) through the mapper and the transformer, with fakes."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from ingest.adapters.base import COMMAND_ID_NAMESPACE, RawDelivery
from ingest.adapters.registry import adapter_class
from ingest.avro import codec
from ingest.canonical.mapping import TenantSettings
from ingest.errors import UnparseablePayload
from ingest.kafka.results import Input, Result
from services.mapper.handler import handle as resolve
from services.transformer.handler import handle as transform
from tests.e2e.helpers import wms_adjusted as adjusted
from tests.e2e.helpers import wms_snapshot as snapshot
from tests.unit.builders import an_input, raw_record
from tests.unit.fakes import FakeBodies, FakeMappings, FakeStock

FACILITY = ("acme", "inhouse-wms", "merchant_qcomm_in/DS-BLR-KOR-01")


def deduped(body: bytes, **overrides: Any) -> Input:
    return an_input({**raw_record(body=body), "dedupeKey": "k", **overrides}, schema="Deduped")


class Pipeline:
    def __init__(self, **options: object) -> None:
        self.repo = FakeMappings({"acme": TenantSettings("acme", auto_create_items=True)})
        self.stock = FakeStock({FACILITY[:2]: dict(options)})

    async def map(self, *inputs: Input) -> list[Result]:
        return await resolve(list(inputs), repo=self.repo, bodies=FakeBodies(), stock=self.stock)

    async def send(self, *bodies: bytes) -> list[Result]:
        return await self.map(*(deduped(b) for b in bodies))


def mapped(res: Result) -> dict[str, Any]:
    return codec().decode(res.outputs[0].value)[1]


def reasons(res: Result) -> list[str]:
    return [f.error.reason_code for f in res.failures]


async def commands_of(res: Result) -> list[dict[str, Any]]:
    record = mapped(res)
    [out] = await transform([an_input(record, schema="Mapped")], bodies=FakeBodies())
    return [codec().decode(c)[1] for c in codec().decode(out.outputs[0].value)[1]["commands"]]


async def test_given_known_skus_when_pages_arrive_out_of_order_then_the_last_page_zeroes_the_unlisted() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABCD"))
    [second] = await p.send(snapshot("C", page=2, page_count=2))
    assert mapped(second)["zeroItems"] == [] and not second.failures  # page 1 not seen yet
    [first] = await p.send(snapshot("A", "B", page=1, page_count=2))
    assert mapped(first)["zeroItems"] == ["D"] and not first.failures
    assert {"entity": "item", "externalId": "D"} in [{k: m[k] for k in ("entity", "externalId")}
                                                     for m in mapped(first)["mappings"]]
    commands = await commands_of(first)
    assert [(c["externalItemId"], c["quantity"]) for c in commands] == [("A", "5"), ("B", "5"), ("D", "0")]
    zero = commands[-1]
    assert (zero["mode"], zero["available"], zero["reason"]) == ("absolute", False, "snapshot")
    assert zero["commandId"] == str(uuid.uuid5(COMMAND_ID_NAMESPACE, f"{mapped(first)['rawId']}:2"))


async def test_given_both_pages_in_one_batch_then_one_read_one_write_and_the_completing_input_zeroes() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABC"))
    p.stock.reads = p.stock.writes = 0
    second, first, other = await p.send(snapshot("A", page=2, page_count=2), snapshot("B", page=1, page_count=2),
                                        adjusted("E"))
    assert mapped(second)["zeroItems"] == [] and mapped(first)["zeroItems"] == ["C"]
    assert (p.stock.reads, p.stock.writes) == (1, 1)
    assert p.stock.skus[FACILITY] == set("ABCE")


async def test_given_a_redelivered_page_then_it_neither_completes_nor_zeroes_again() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABCD"))
    page1 = snapshot("A", page=1, page_count=3)
    await p.send(page1)
    [again] = await p.send(page1)  # the same page delivered once more (a vendor retry under a new event id)
    assert mapped(again)["zeroItems"] == [] and not again.failures
    await p.send(snapshot("B", page=2, page_count=3))
    [done] = await p.send(snapshot("C", page=3, page_count=3))
    assert mapped(done)["zeroItems"] == ["D"]
    [late] = await p.send(snapshot("C", page=3, page_count=3))  # after completion: nothing more
    assert mapped(late)["zeroItems"] == [] and not late.failures


async def test_given_the_completing_input_runs_again_then_same_zeroing_and_same_command_ids() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABCD"))
    completing = deduped(snapshot("A", "B", "C"))
    [first] = await p.map(completing)
    await p.send(adjusted("F"))  # the facility's set grows afterwards: the stored verdict does not change
    [rerun] = await p.map(completing)  # the same input read again (its transaction aborted)
    [replay] = await p.map(an_input({**completing.record, "replayId": "r-1"}, schema="Deduped"))  # support replay
    ids = [[c["commandId"] for c in await commands_of(r)] for r in (first, rerun, replay)]
    assert mapped(first)["zeroItems"] == mapped(rerun)["zeroItems"] == mapped(replay)["zeroItems"] == ["D"]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 4


async def test_given_zeroing_above_the_max_ratio_then_nothing_zeroed_and_a_validation_failure_names_it() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABC"))
    [res] = await p.send(snapshot("A", snapshot_id="SNAP-9"))
    assert res.outputs and mapped(res)["zeroItems"] == []  # the snapshot's own commands still go
    [failure] = res.failures
    assert (failure.error.failure_class, failure.error.reason_code) == ("validation", "snapshot_zeroing_guard")
    assert failure.details["facility"] == FACILITY[2] and failure.details["snapshotId"] == "SNAP-9"
    assert (failure.details["wouldZero"], failure.details["knownSkus"]) == ("2", "3")
    assert "2 of 3" in failure.error.message and "SNAP-9" in failure.error.message
    assert [c["externalItemId"] for c in await commands_of(res)] == ["A"]


async def test_given_a_higher_max_ratio_option_then_the_same_snapshot_zeroes() -> None:
    p = Pipeline(snapshot_max_zero_ratio=0.7)
    await p.send(*(adjusted(s) for s in "ABC"))
    [res] = await p.send(snapshot("A"))
    assert mapped(res)["zeroItems"] == ["B", "C"] and not res.failures


async def test_given_a_partial_snapshot_then_never_zeroes_and_no_snapshot_state_is_read() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABC"))
    p.stock.reads = 0
    [res] = await p.send(snapshot("A", mode="partial"))
    assert mapped(res)["zeroItems"] == [] and not res.failures
    assert p.stock.reads == 0 and not p.stock.snapshots


async def test_given_a_snapshot_older_than_the_newest_applied_then_stale_and_nothing_zeroed() -> None:
    p = Pipeline()
    await p.send(*(adjusted(s) for s in "ABCD"))
    [newer] = await p.send(snapshot("A", "B", "C", snapshot_id="S-10h", as_of="2026-01-14T10:00:00Z"))
    assert mapped(newer)["zeroItems"] == ["D"]
    [older] = await p.send(snapshot("A", "B", "D", snapshot_id="S-09h", as_of="2026-01-14T09:00:00Z"))
    assert mapped(older)["zeroItems"] == []
    assert reasons(older) == ["snapshot_stale"] and older.failures[0].details["snapshotId"] == "S-09h"


async def test_given_no_known_skus_then_a_first_full_snapshot_zeroes_nothing() -> None:
    [res] = await Pipeline().send(snapshot("A", "B"))
    assert mapped(res)["zeroItems"] == [] and not res.failures


def test_a_page_beyond_page_count_is_unparseable() -> None:
    adapter = adapter_class("inhouse-wms")()
    raw = RawDelivery(body=snapshot("A", page=3, page_count=2), headers=None, raw_id="r", tenant_id="acme",  # type: ignore[arg-type]
                      provider="inhouse-wms", family="stock", received_at=None)  # type: ignore[arg-type]
    with pytest.raises(UnparseablePayload, match="page_count"):
        adapter.parse(raw)
