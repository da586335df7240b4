"""The command writer's handler on feed-sized inputs, in process: CPU µs per command.

``python bench/command_writer_bench.py [--inputs 50] [--per 99] [--repeat 7]`` builds ``Validated`` inputs of
catalog, price and stock commands (as a bulk feed writes them), answers the claims from memory (no
PostgreSQL) and prints the minimum over the repeats of the handler's CPU per command: decode, keys, headers,
event splicing, outcome records — what the command writer does per command besides producing.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.avro import codec  # noqa: E402
from ingest.kafka.results import Input  # noqa: E402
from services.command_writer.handler import handle  # noqa: E402

WHEN = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
RAW_ID = "1b5c0f4e-1b7d-4a7e-9c43-3f3e8f7a1c11"


def commands(i: int) -> Iterator[tuple[str, dict[str, Any]]]:
    base = {"tenantId": "acme", "provider": "google-merchant", "rawId": RAW_ID, "occurredAt": WHEN,
            "receivedAt": WHEN, "merchantId": None, "storeId": None}
    item = str(uuid.uuid5(uuid.NAMESPACE_URL, f"item-{i}"))
    yield "UpsertCatalogItem", {**base, "itemId": item, "externalItemId": f"SKU-{i}", "name": f"Product {i}",
                                "description": "A plain product description", "brand": "Brand",
                                "category": "uncategorized", "gtin": "4006381333931",
                                "imageUrls": [f"https://img.example.com/{i}.jpg"], "attributes": {}, "active": True}
    yield "UpdatePrice", {**base, "itemId": item, "externalItemId": f"SKU-{i}", "variantId": item,
                          "amountMinor": 1999, "currency": "USD", "priceType": "base"}
    yield "UpdateStockLevel", {**base, "itemId": item, "externalItemId": f"SKU-{i}", "variantId": item,
                               "mode": "absolute", "quantity": None, "unit": "each", "available": True,
                               "reason": "snapshot", "availableAgainAt": None}


def encoded(name: str, record: dict[str, Any]) -> bytes:
    full = {"commandId": str(uuid.uuid4()), "commandType": name, **record}
    for f in codec().raw[name]["fields"]:
        full.setdefault(f["name"], f.get("default"))
    return codec().encode(name, full)


class InMemoryClaims:
    async def claim(self, items: list[tuple[str, str, str]], *,
                    reclaimed: set[str] | None = None) -> dict[str, tuple[bool, str]]:
        return {command_id: (True, raw_id) for command_id, raw_id, _ in items}

    async def published(self, command_ids: list[str]) -> dict[str, set[str]]:
        return {}


def inputs(count: int, per: int) -> list[Input]:
    out, n = [], 0
    for offset in range(count):
        chunk: list[bytes] = []
        while len(chunk) < per:
            chunk += [encoded(name, record) for name, record in commands(n)]
            n += 1
        record = {"rawId": RAW_ID, "tenantId": "acme", "provider": "google-merchant", "eventType": "feed",
                  "replayId": None, "commands": chunk}
        out.append(Input("integration.validated", 0, offset, "acme:-:google-merchant", {"raw-id": RAW_ID},
                         "Validated", record))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=50)
    parser.add_argument("--per", type=int, default=99)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    batch = inputs(args.inputs, args.per)
    total = sum(len(i.record["commands"]) for i in batch)
    best = float("inf")
    for _ in range(args.repeat):
        started = time.process_time()
        asyncio.run(handle(batch, written=InMemoryClaims()))
        best = min(best, (time.process_time() - started) / total * 1e6)
    print(f"command writer handler: {best:.2f} CPU µs per command ({total:,} commands, minimum of {args.repeat})")


if __name__ == "__main__":
    main()
