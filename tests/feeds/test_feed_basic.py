"""Feed imports end to end: upload → S3 → feeds stage → validator → command writer."""
from __future__ import annotations

import pytest

from tests.feeds.helpers import SECRET, upload, wait_import
from tests.stack import Stack, new_tenant

pytestmark = pytest.mark.e2e


def test_csv_feed_becomes_commands(stack: Stack) -> None:
    tenant = new_tenant(stack, auto_create=True)
    stack.cli("sources", "add", tenant, "google-merchant", "--secret", SECRET)
    body = (b"id,title,price,availability\r\n"
            b"A1,Alpha,10.00 USD,in_stock\r\n"
            b"A2,Beta,12.50 USD,out_of_stock\r\n")
    status, payload = upload(stack, tenant, body)
    assert status == 202, payload
    raw_id = payload["rawId"]
    progress = wait_import(stack, raw_id)
    assert progress["rowsDone"] == 2 and progress["rowsTotal"] == 2
    commands = stack.consume("catalog.commands",
                             until=lambda rs: len([r for r in rs if r["rawId"] == raw_id]) >= 8, timeout=30)
    mine = [r for r in commands if r["rawId"] == raw_id]
    assert sorted(r["commandType"] for r in mine) == sorted(
        ["UpsertCatalogItem", "UpsertVariant", "UpdatePrice", "UpdateStockLevel"] * 2)
