"""Every webhook connector end to end: each recorded case, signed, through the running receiver and every stage.

One tenant per case (auto-creation on, the case's tenant settings), the provider's own route and family, the
adapter's sender-side ``sign``. The commands the pipeline writes must be, type for type, the golden output of the
contract suite; unsupported events must end as counted skips; and nothing may be left unaccounted for.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import pytest

from ingest.adapters.registry import adapter_class
from ingest.crypto import SecretBox
from ingest.db import repositories
from ingest.db.pool import create_pool
from services.receiver.handlers import KIND_FAMILIES
from tests.adapters.cases import Case, load_cases
from tests.e2e.helpers import post
from tests.stack import Stack

pytestmark = pytest.mark.e2e
# covered by their own end-to-end suites: the partner API (tests/partner), feed uploads (tests/feeds),
# pull-only sources and pulled documents (tests/poller)
ELSEWHERE = {"standard", "google-merchant", "omuni", "vinculum"}


def _route(case: Case) -> str | None:
    cls = adapter_class(case.provider)
    if case.meta.get("route", "").startswith("pull"):
        return None
    if case.family in KIND_FAMILIES.get(cls.kind, ()):
        return f"/v1/integrations/{cls.kind}/{case.provider}/webhooks/{case.family}"
    if case.family in cls.extra_routes.values():
        tail = next(t for t, f in cls.extra_routes.items() if f == case.family)
        return f"/v1/integrations/{cls.kind}/{case.provider}/{tail}"
    return None


CASES = [c for c in load_cases() if c.provider not in ELSEWHERE and _route(c) is not None]


async def _provision(stack: Stack, tenants: dict[str, Case]) -> None:
    pool = await create_pool(stack.dsn, max_size=2)
    box = SecretBox(None)
    try:
        for tenant, case in tenants.items():
            settings = case.meta.get("tenant", {})
            await repositories.add_tenant(pool, tenant, auto_create_items=True,
                                          timezone=settings.get("timezone", "UTC"),
                                          default_currency=settings.get("default_currency"))
            await repositories.add_source_secret(pool, box, tenant, case.provider, case.secret,
                                                 options=case.meta.get("options", {}))
    finally:
        await pool.close()


def test_every_connector_case_flows_from_signed_webhook_to_canonical_commands(stack: Stack) -> None:
    tenants = {f"c{uuid.uuid4().hex[:10]}": case for case in CASES}
    asyncio.run(_provision(stack, tenants))
    sent: dict[str, Case] = {}
    for tenant, case in tenants.items():
        adapter = case.adapter()  # with the source's options (e.g. the basic-auth user)
        headers = {**case.headers, **adapter.sign(case.body, secret=case.secret, timestamp=int(time.time()),
                                                  msg_id=case.headers.get("webhook-id", "msg_e2e"))}
        headers.setdefault("Content-Type", "application/json")
        status, _, _ = post(stack.receiver, tenant, _route(case) or "", case.body, headers)
        assert 200 <= status < 300, f"{case.id}: {status}"
        sent[tenant] = case

    def outcome_rows() -> dict[str, dict]:  # type: ignore[type-arg]
        rows = stack.query(
            "SELECT r.tenant_id, o.outcome, o.command_types, "
            "(SELECT json_agg(f.class || ':' || f.reason_code) FROM failures f WHERE f.raw_id = r.raw_id) AS failures "
            "FROM raw_payloads r LEFT JOIN outcomes o ON o.raw_id = r.raw_id WHERE r.tenant_id = ANY($1::text[])",
            list(sent))
        return {r["tenant_id"]: r for r in rows if r["outcome"] or r["failures"]}

    deadline = time.monotonic() + 120
    done: dict[str, dict] = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline and len(done) < len(sent):
        done = outcome_rows()
        time.sleep(0.5)
    missing = sorted(sent[t].id for t in sent if t not in done)
    assert not missing, f"never accounted for: {missing}"
    problems = []
    for tenant, case in sent.items():
        row = done[tenant]
        failures = json.loads(row["failures"]) if isinstance(row["failures"], str) else row["failures"]
        if case.expect == "commands":
            expected = Counter(c["commandType"] for c in json.loads((case.path / "expected.json").read_text()))
            got = Counter(row["command_types"] or [])
            if row["outcome"] != "processed" or got != expected or failures:
                problems.append(f"{case.id}: outcome={row['outcome']} got={dict(got)} expected={dict(expected)} "
                                f"failures={failures}")
        elif case.expect == "unsupported" and row["outcome"] != "skipped":
            problems.append(f"{case.id}: expected a counted skip, got {row['outcome']} {failures}")
        elif case.expect == "unparseable" and not any(f.startswith("validation:") for f in failures or []):
            problems.append(f"{case.id}: expected a validation failure, got {row['outcome']} {failures}")
    assert not problems, "\n".join(problems)

    # and value for value: what the stages wrote is the golden output (ids aside: they are the tenant's own), so
    # nothing the adapter does alone (source options, tenant settings, mappings) is lost between the stages
    # (the validator gives an item without a category the tenant's default one, `uncategorized` here)
    golden = {t: [_values(c, default_category="uncategorized")
                  for c in json.loads((case.path / "expected.json").read_text())]
              for t, case in sent.items() if case.expect == "commands"}
    written = stack.consume("catalog.commands", until=lambda rs: all(
        sum(r["tenantId"] == t for r in rs) >= len(v) for t, v in golden.items()), timeout=60)
    for tenant, want in golden.items():
        got_values = sorted(_values(r) for r in written if r["tenantId"] == tenant)
        if got_values != sorted(want):
            problems.append(f"{sent[tenant].id}: written {got_values} != golden {sorted(want)}")
    assert not problems, "\n".join(problems)


#: the fields of a command a vendor's payload decides (not ids, not the receive time)
VALUE_FIELDS = ("commandType", "externalItemId", "externalVariantId", "name", "mode", "quantity", "unit",
                "available", "reason", "amountMinor", "currency", "priceType", "status", "externalStoreId",
                "externalOrderId", "busyDelayMinutes", "active", "category", "brand", "gtin")


def _values(command: dict, default_category: str | None = None) -> str:  # type: ignore[type-arg]
    values = {k: command.get(k) for k in VALUE_FIELDS if k in command}
    if default_category and "category" in values and values["category"] is None:
        values["category"] = default_category
    return json.dumps(values, sort_keys=True, default=str)
