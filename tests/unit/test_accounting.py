"""Exact accounting without servers: ledger buckets, and the command writer's re-run after a dead transaction."""
from __future__ import annotations

from typing import Any

from ingest.avro import codec
from ingest.ledger import BUCKETS, summarize
from services.command_writer.handler import handle as write
from services.transformer.handler import handle as transform
from services.validator.handler import handle as validate
from tests.unit.builders import an_input
from tests.unit.fakes import FakeBodies, FakeClaims
from tests.unit.test_handlers import _mapped, _wms


def row(bucket: str, provider: str = "shopify", **extra: Any) -> dict[str, Any]:
    return {"raw_id": f"r-{bucket}-{len(extra)}", "provider": provider, "bucket": bucket, "partial": False,
            "skip_reason": None, "failure": None, "accounted_at": None, **extra}


def test_buckets_are_disjoint_and_sum_to_acknowledged() -> None:
    rows = [row("with_commands", partial=True), row("failed", failure="validation:x"), row("duplicates"),
            row("skipped", skip_reason="no_commands"), row("skipped", skip_reason="unsupported_event")]
    report = summarize(rows)
    assert sum(report[b] for b in BUCKETS) == report["acknowledged"] == 5
    assert report["balanced"] and report["partial"] == 1
    assert report["skip_reasons"] == {"no_commands": 1, "unsupported_event": 1}
    assert report["failure_reasons"] == {"validation:x": 1}


def test_a_lost_or_in_flight_payload_unbalances() -> None:
    assert not summarize([row("with_commands"), row("lost")])["balanced"]
    report = summarize([row("in_flight", provider="deliverect")])
    assert not report["balanced"] and report["in_flight_sample"] == ["r-in_flight-0"]
    assert report["by_provider"] == {"deliverect": {"in_flight": 1}}


async def _validated() -> dict[str, Any]:
    [res] = await transform([an_input(_mapped(_wms(quantity_after="4")), schema="Mapped")], bodies=FakeBodies())
    out = codec().decode(res.outputs[0].value)[1]
    [checked] = await validate([an_input(out, schema="Transformed")])
    return codec().decode(checked.outputs[0].value)[1]


async def test_rerun_produces_again_only_what_the_dead_run_did_not_make_visible() -> None:
    validated = await _validated()
    written = FakeClaims()
    inp = an_input(validated, schema="Validated", topic="integration.validated", offset=7)
    [first] = await write([inp], written=written)
    [command_id] = first.outcome["commandIds"]  # type: ignore[index]
    # the transaction died; its command is visible (a broker that shows aborted records), its event is not
    written.visible = {"catalog.commands": {command_id}}
    [again] = await write([an_input(validated, schema="Validated", topic="integration.validated", offset=7)],
                          written=written)
    assert [o.topic for o in again.outputs] == ["inventory.events"]
    assert again.outcome["commandIds"] == [command_id]  # type: ignore[index]  # still written, once
    # on a broker that hid the aborted transaction, the re-run produces everything again
    written.visible = {}
    [third] = await write([an_input(validated, schema="Validated", topic="integration.validated", offset=7)],
                          written=written)
    assert [o.topic for o in third.outputs] == ["catalog.commands", "inventory.events"]
