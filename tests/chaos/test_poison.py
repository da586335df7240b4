"""A poison record on an internal topic becomes a ``processing`` failure and the stage moves on."""
from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from tests.chaos.harness import ChaosStack

pytestmark = pytest.mark.chaos

STAGE_OF = {"integration.raw": "dedupe", "integration.deduped": "mapper", "integration.mapped": "transformer",
            "integration.transformed": "validator", "integration.validated": "command-writer",
            "integration.outcomes": "failure-recorder"}
POISON = {
    "garbage": b"\x00\xffnot avro at all\xfe",
    "bad fingerprint": b"\xc3\x01" + b"\x01" * 8 + b"\x02\x04abc",
    "truncated": b"\xc3\x01",
}


def produce(chaos: ChaosStack, topic: str, value: bytes, headers: dict[str, str]) -> None:
    p = Producer({"bootstrap.servers": chaos.stack.kafka})
    p.produce(chaos.stack.topic(topic), value=value, key=b"poison",
              headers=[(k, v.encode()) for k, v in headers.items()])
    assert p.flush(10) == 0


@pytest.mark.parametrize("topic", [pytest.param(t, marks=() if t == "integration.deduped" else pytest.mark.chaos_full)
                                   for t in STAGE_OF])
def test_poison_record_is_a_processing_failure_and_the_stage_moves_on(chaos: ChaosStack, topic: str) -> None:
    raw_ids = []
    for name, value in POISON.items():
        raw_id = str(uuid.uuid4())
        raw_ids.append(raw_id)
        produce(chaos, topic, value, {"raw-id": raw_id, "tenant-id": "poison", "provider": "shopify",
                                      "type": name})
    # a header that is not a rawId must not break the failure's own recording
    produce(chaos, topic, b"\x00", {"raw-id": "not-a-uuid; DROP TABLE failures", "tenant-id": "poison"})
    rows = chaos.stack.wait_for(
        "SELECT raw_id::text, class, stage, reason_code, origin_topic FROM failures WHERE raw_id = ANY($1::uuid[])",
        raw_ids, check=lambda rs: len(rs) == len(raw_ids), timeout=90)
    assert {(r["class"], r["stage"], r["reason_code"]) for r in rows} == \
        {("processing", STAGE_OF[topic], "undecodable_record")}
    assert {r["origin_topic"] for r in rows} == {chaos.stack.topic(topic)}
    chaos.stack.wait_for("SELECT 1 FROM failures WHERE stage = $1 AND raw_id IS NULL AND origin_topic = $2",
                         STAGE_OF[topic], chaos.stack.topic(topic), timeout=60)
    # the next good payload still flows all the way
    tenant = chaos.new_tenant()
    sent = chaos.load(tenant, rate=4.0, duration_s=2.0).start().join()
    acked = [s for s in sent if s.ok]
    assert acked
    rows = chaos.wait_accounted(tenant, len(acked), timeout=90)
    assert not [r for r in rows if r["bucket"] in ("lost", "in_flight")]
    assert any(r["bucket"] == "with_commands" for r in rows)
