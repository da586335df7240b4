"""Stage handlers with fakes: no broker, no database."""
from __future__ import annotations

import json
import uuid

import pytest

from ingest.avro import codec
from ingest.canonical.mapping import TenantSettings
from services.command_writer.handler import handle as write
from services.dedupe.handler import handle as dedupe
from services.mapper.handler import handle as resolve
from services.transformer.handler import handle as transform
from services.validator.handler import handle as validate
from tests.adapters.cases import load_cases
from tests.unit.builders import an_input, raw_record
from tests.unit.fakes import FakeBodies, FakeClaims, FakeMappings


def _wms(event_id: str | None = None, **data: object) -> bytes:
    body = json.loads(raw_record()["body"])
    body["event_id"] = event_id or f"evt_{uuid.uuid4().hex}"
    body["sequence"] = None  # sequencing has its own tests below
    body["data"].update(data)
    return json.dumps(body).encode()


# --- dedupe -----------------------------------------------------------------------------------
async def test_given_new_delivery_when_deduped_then_forwarded_with_key() -> None:
    claims = FakeClaims()
    rec = raw_record(body=_wms("evt_A"))
    [res] = await dedupe([an_input(rec)], claims=claims, bodies=FakeBodies())
    assert res.label == "forwarded"
    name, out = codec().decode(res.outputs[0].value)
    assert name == "Deduped" and out["dedupeKey"] == "acme:inhouse-wms:evt_A"


async def test_given_same_event_under_new_raw_id_then_duplicate_failure_naming_the_first() -> None:
    claims = FakeClaims()
    first = raw_record(body=_wms("evt_B"))
    await dedupe([an_input(first)], claims=claims, bodies=FakeBodies())
    [res] = await dedupe([an_input(raw_record(body=_wms("evt_B")))], claims=claims, bodies=FakeBodies())
    assert res.label == "duplicate"
    assert res.failures[0].error.failure_class == "duplicate"
    assert res.failures[0].details["firstRawId"] == first["rawId"]


async def test_given_same_raw_republished_then_dropped_silently_not_a_duplicate() -> None:
    claims = FakeClaims()
    rec = raw_record(body=_wms("evt_C"))
    await dedupe([an_input(rec)], claims=claims, bodies=FakeBodies())
    [res] = await dedupe([an_input(rec)], claims=claims, bodies=FakeBodies())
    assert res.label == "redelivered" and not res.failures and not res.outputs


async def test_given_reprocessing_of_the_same_input_offset_then_forwarded_again() -> None:
    """A crash between the claim and the transaction commit: the input is read again and must go through."""
    claims = FakeClaims()
    inp = an_input(raw_record(body=_wms("evt_D")), offset=7)
    await dedupe([inp], claims=claims, bodies=FakeBodies())
    [res] = await dedupe([inp], claims=claims, bodies=FakeBodies())
    assert res.label == "forwarded"


async def test_given_replay_then_each_replay_passes_once() -> None:
    claims = FakeClaims()
    rec = raw_record(body=_wms("evt_E"))
    await dedupe([an_input(rec)], claims=claims, bodies=FakeBodies())
    replay = {**rec, "replayId": "r-1"}
    [first] = await dedupe([an_input(replay)], claims=claims, bodies=FakeBodies())
    [again] = await dedupe([an_input(replay)], claims=claims, bodies=FakeBodies())
    assert first.label == "forwarded" and again.label == "redelivered"


async def test_given_two_copies_in_one_batch_then_one_forwarded_one_duplicate_and_two_queries() -> None:
    claims = FakeClaims()
    a, b = raw_record(body=_wms("evt_F")), raw_record(body=_wms("evt_F"))
    results = await dedupe([an_input(a), an_input(b)], claims=claims, bodies=FakeBodies())
    assert [r.label for r in results] == ["forwarded", "duplicate"]
    assert claims.calls == 2  # one claim for the raw ids, one for the adapter keys: per batch, not per message


async def test_given_large_body_then_read_from_the_segment_range() -> None:
    body = _wms("evt_G")
    rec = {**raw_record(body=body), "body": None, "segmentKey": "k", "segmentOffset": 5, "segmentLength": len(body)}
    bodies = FakeBodies({"k": b"xxxxx" + body + b"\n"})
    [res] = await dedupe([an_input(rec)], claims=FakeClaims(), bodies=bodies)
    assert res.label == "forwarded" and bodies.reads == 1


async def test_given_unparseable_body_then_validation_failure() -> None:
    [res] = await dedupe([an_input(raw_record(body=b'{"truncated": '))], claims=FakeClaims(), bodies=FakeBodies())
    assert res.failures[0].error.failure_class == "validation"
    assert res.failures[0].error.reason_code == "invalid_json"


# --- mapping resolver -------------------------------------------------------------------------
def _deduped(body: bytes, tenant: str = "acme") -> dict:  # type: ignore[type-arg]
    return {**raw_record(body=body, tenant=tenant), "dedupeKey": "k"}


async def test_given_unmapped_keys_and_no_auto_create_then_mapping_failure_naming_all() -> None:
    repo = FakeMappings({"acme": TenantSettings("acme")})
    [res] = await resolve([an_input(_deduped(_wms()), schema="Deduped")], repo=repo, bodies=FakeBodies())
    err = res.failures[0].error
    assert err.failure_class == "mapping"
    assert {("store", "DS-BLR-KOR-01"), ("item", "AMUL-TAAZA-500"), ("merchant", "merchant_qcomm_in")} <= \
        set(err.missing)  # type: ignore[attr-defined]


async def test_given_auto_create_then_deterministic_ids_and_one_load_per_batch() -> None:
    repo = FakeMappings({"acme": TenantSettings("acme", auto_create_items=True)})
    inputs = [an_input(_deduped(_wms()), schema="Deduped") for _ in range(5)]
    results = await resolve(inputs, repo=repo, bodies=FakeBodies())
    assert all(r.label == "forwarded" for r in results)
    assert repo.loads == 2  # the batch's keys, then the auto-created ones: not per message
    ids = [{m["entity"]: m["canonicalId"] for m in codec().decode(r.outputs[0].value)[1]["mappings"]}
           for r in results]
    assert all(i == ids[0] for i in ids)


async def test_given_mapped_keys_then_mapping_context_carried() -> None:
    rows = {("acme", "inhouse-wms", "merchant", "merchant_qcomm_in"): "m1",
            ("acme", "inhouse-wms", "store", "DS-BLR-KOR-01"): "s1",
            ("acme", "inhouse-wms", "item", "AMUL-TAAZA-500"): "i1"}
    repo = FakeMappings({"acme": TenantSettings("acme", default_currency="INR")}, rows)
    [res] = await resolve([an_input(_deduped(_wms()), schema="Deduped")], repo=repo, bodies=FakeBodies())
    out = codec().decode(res.outputs[0].value)[1]
    assert {m["canonicalId"] for m in out["mappings"]} == {"m1", "s1", "i1"}
    assert out["tenantSettings"]["defaultCurrency"] == "INR"


# --- transformer → validator → writer ---------------------------------------------------------
def _mapped(body: bytes) -> dict:  # type: ignore[type-arg]
    mappings = [{"entity": "merchant", "externalId": "merchant_qcomm_in", "canonicalId": "m1", "autoCreated": False},
                {"entity": "store", "externalId": "DS-BLR-KOR-01", "canonicalId": "s1", "autoCreated": False},
                {"entity": "item", "externalId": "AMUL-TAAZA-500", "canonicalId": "i1", "autoCreated": False}]
    return {**_deduped(body), "mappings": mappings,
            "tenantSettings": {"defaultCategory": "uncategorized", "autoCreateItems": "false"}}


async def _through_transform(body: bytes) -> dict:  # type: ignore[type-arg]
    [res] = await transform([an_input(_mapped(body), schema="Mapped")], bodies=FakeBodies())
    assert res.label == "forwarded", res.failures
    return codec().decode(res.outputs[0].value)[1]


async def test_transformer_emits_single_object_encoded_commands() -> None:
    out = await _through_transform(_wms(quantity_after="9"))
    [name_record] = [codec().decode(c) for c in out["commands"]]
    assert name_record[0] == "UpdateStockLevel"
    assert (name_record[1]["itemId"], name_record[1]["storeId"], name_record[1]["quantity"]) == ("i1", "s1", "9")
    assert out["eventType"] == "stock.adjusted"


async def test_validator_splits_bad_commands_into_failures_and_forwards_the_rest() -> None:
    out = await _through_transform(_wms(quantity_after="-3"))
    [res] = await validate([an_input(out, schema="Transformed")])
    assert res.label == "failed" and not res.outputs
    assert res.failures[0].error.reason_code == "quantity_negative"
    assert res.failures[0].command_id


async def test_writer_writes_command_and_event_keyed_per_entity_and_refuses_repeats() -> None:
    out = await _through_transform(_wms(quantity_after="4"))
    [checked] = await validate([an_input(out, schema="Transformed")])
    validated = codec().decode(checked.outputs[0].value)[1]
    written = FakeClaims()
    [res] = await write([an_input(validated, schema="Validated")], written=written)
    topics = [o.topic for o in res.outputs]
    assert topics == ["catalog.commands", "inventory.events"]
    assert res.outputs[0].key == "acme:s1:i1"
    event = codec().decode(res.outputs[1].value)
    assert event[0] == "StockLevelUpdated" and event[1]["eventType"] == "StockLevelUpdated"
    assert res.outcome and res.outcome["commandTypes"] == ["UpdateStockLevel"]
    # a replay of the same payload (another input offset): nothing written twice
    [again] = await write([an_input(validated, schema="Validated")], written=written)
    assert again.outputs == [] and again.outcome["duplicateCommandIds"] == res.outcome["commandIds"]  # type: ignore[index]


async def test_writer_writes_a_command_once_when_one_batch_carries_its_input_twice() -> None:
    """Issue #7: after a broker outage the validated topic held the same record twice (a fenced run's output,
    visible on Tansu, and its re-run's), and both copies reached the writer in one batch. Both were claimed in
    one statement, both looked first, and every command went out twice in the same transaction."""
    out = await _through_transform(_wms(quantity_after="4"))
    [checked] = await validate([an_input(out, schema="Transformed")])
    validated = codec().decode(checked.outputs[0].value)[1]
    written = FakeClaims()
    first, second = await write([an_input(validated, schema="Validated"), an_input(validated, schema="Validated")],
                                written=written)
    assert [o.topic for o in first.outputs] == ["catalog.commands", "inventory.events"]
    assert second.outputs == []
    assert second.outcome and second.outcome["duplicateCommandIds"] == first.outcome["commandIds"]  # type: ignore[index]


@pytest.mark.parametrize("quantity,ok", [("5", True), ("0.250", True), ("abc", False), ("NaN", False)])
async def test_validator_quantity_rules(quantity: str, ok: bool) -> None:
    from services.validator.rules import Violation, validate as rule

    record = {"itemId": "i", "mode": "absolute", "quantity": quantity, "unit": "kg"}
    if ok:
        rule("UpdateStockLevel", record, default_category=None)
    else:
        with pytest.raises(Violation):
            rule("UpdateStockLevel", record, default_category=None)


@pytest.mark.parametrize("amount,currency,reason", [(-1, "INR", "price_negative"), (100, "XYZ", "currency_unknown"),
                                                    (100, None, "currency_missing"), (1.5, "INR", "price_format")])
async def test_validator_price_rules(amount: object, currency: object, reason: str) -> None:
    from services.validator.rules import Violation, validate as rule

    with pytest.raises(Violation) as exc:
        rule("UpdatePrice", {"itemId": "i", "amountMinor": amount, "currency": currency}, default_category=None)
    assert exc.value.reason_code == reason


async def test_validator_assigns_default_category_or_fails_without_one() -> None:
    from services.validator.rules import Violation, validate as rule

    item = {"itemId": "i", "name": "n", "category": None}
    assert rule("UpsertCatalogItem", item, default_category="grocery")["category"] == "grocery"
    with pytest.raises(Violation):
        rule("UpsertCatalogItem", item, default_category=None)


# --- per-facility sequence (in-house WMS) -----------------------------------------------------
async def test_sequences_in_order_pass_gaps_and_late_ones_are_applied_and_reported() -> None:
    repo = FakeMappings({"acme": TenantSettings("acme", auto_create_items=True)})

    def numbered(seq: int) -> dict:  # type: ignore[type-arg]
        body = json.loads(_wms())
        body["sequence"] = seq
        return _deduped(json.dumps(body).encode())

    results = await resolve([an_input(numbered(n), schema="Deduped") for n in (10, 11, 14, 12)], repo=repo,
                            bodies=FakeBodies())
    assert [r.label for r in results[:2]] == ["forwarded", "forwarded"] and not results[0].failures
    gap = results[2]
    assert gap.outputs and gap.failures[0].error.reason_code == "sequence_gap"  # applied, and reported
    late = results[3]
    assert late.outputs and late.failures[0].error.reason_code == "out_of_sequence"
    assert repo.last[("acme", "inhouse-wms", "merchant_qcomm_in/DS-BLR-KOR-01")][0] == 14  # never moves back
    replay = {**numbered(12), "replayId": "r-1"}
    [replayed] = await resolve([an_input(replay, schema="Deduped")], repo=repo, bodies=FakeBodies())
    assert replayed.outputs and not replayed.failures  # a replay is deliberate: no sequence check


async def test_given_unchanged_pulled_document_then_counted_skip_not_duplicate() -> None:
    claims = FakeClaims()
    body = _wms("evt_P")
    await dedupe([an_input(raw_record(body=body, route="pull:menus"))], claims=claims, bodies=FakeBodies())
    [res] = await dedupe([an_input(raw_record(body=body, route="pull:menus"))], claims=claims, bodies=FakeBodies())
    assert res.label == "skipped" and res.skipped == "unchanged_since_last_pull" and not res.failures


async def test_the_sources_options_reach_the_transformers_adapter() -> None:
    """A Shopify source priced in USD for a tenant whose default is INR: the mapper reads the source's options
    and the transformer's adapter prices with them (the payload names no currency)."""
    case = next(c for c in load_cases("shopify") if c.name == "products.update")
    record = {**raw_record("shopify", body=case.body, headers=case.headers, family="catalog"), "dedupeKey": "k"}
    repo = FakeMappings({"acme": TenantSettings("acme", auto_create_items=True, default_currency="INR")})

    async def currencies() -> set[str]:
        [mapped] = await resolve([an_input(record, schema="Deduped")], repo=repo, bodies=FakeBodies())
        [res] = await transform([an_input(codec().decode(mapped.outputs[0].value)[1], schema="Mapped")],
                                bodies=FakeBodies())
        commands = [codec().decode(c) for c in codec().decode(res.outputs[0].value)[1]["commands"]]
        return {r["currency"] for name, r in commands if name == "UpdatePrice"}

    assert await currencies() == {"INR"}
    repo.options[("acme", "shopify")] = {"currency": "USD"}
    assert await currencies() == {"USD"}
