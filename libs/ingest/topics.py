"""Topic names (contract §5) and their definitions in ``deploy/topics.yaml``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RAW = "integration.raw"
DEDUPED = "integration.deduped"
IMPORTS = "integration.imports"  # deduped bulk feed imports (family import), for the feeds stage
MAPPED = "integration.mapped"
TRANSFORMED = "integration.transformed"
VALIDATED = "integration.validated"
OUTCOMES = "integration.outcomes"
FAILURES = "integration.failures"
COMMANDS = "catalog.commands"
CATALOG_EVENTS = "catalog.events"
PRICING_EVENTS = "pricing.events"
INVENTORY_EVENTS = "inventory.events"
STORE_STATUS_EVENTS = "store-status.events"
ORDER_STATUS_EVENTS = "order-status.events"

PUBLIC_EVENT_TOPICS = (CATALOG_EVENTS, PRICING_EVENTS, INVENTORY_EVENTS, STORE_STATUS_EVENTS,
                       ORDER_STATUS_EVENTS)


def definitions_path() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "deploy" / "topics.yaml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError("deploy/topics.yaml not found")


def load_definitions(path: Path | None = None) -> list[dict[str, Any]]:
    """Each topic with its partitions, replication factor and config, defaults applied."""
    doc = yaml.safe_load((path or definitions_path()).read_text())
    defaults = doc.get("defaults", {})
    out = []
    for topic in doc["topics"]:
        config = {**defaults.get("config", {}), **topic.get("config", {})}
        out.append({
            "name": topic["name"],
            "partitions": int(topic.get("partitions", defaults.get("partitions", 1))),
            "replication_factor": int(topic.get("replication_factor", defaults.get("replication_factor", 1))),
            "config": {k: str(v) for k, v in config.items()},
        })
    return out
