"""Topic administration: ``pos-ingest topics create`` from deploy/topics.yaml, idempotent."""
from __future__ import annotations

import logging
import os

from confluent_kafka.admin import AdminClient, NewTopic

from ingest.topics import load_definitions

log = logging.getLogger(__name__)


def create_topics(bootstrap: str, *, prefix: str = "", partitions: int | None = None,
                  replication_factor: int | None = None, timeout: float = 30.0) -> list[str]:
    """Create every topic that does not exist yet; returns the names created."""
    env_p = os.environ.get("TOPIC_PARTITIONS")
    env_rf = os.environ.get("TOPIC_REPLICATION_FACTOR")
    partitions = partitions or (int(env_p) if env_p else None)
    replication_factor = replication_factor or (int(env_rf) if env_rf else None)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = []
    for d in load_definitions():
        name = prefix + d["name"]
        if name in existing:
            continue
        rf = replication_factor or d["replication_factor"]
        config = dict(d["config"])
        if rf < int(config.get("min.insync.replicas", "1")):
            config["min.insync.replicas"] = str(rf)
        wanted.append(NewTopic(name, num_partitions=partitions or d["partitions"], replication_factor=rf,
                               config=config))
    created = []
    for name, fut in admin.create_topics(wanted, request_timeout=timeout).items() if wanted else []:
        try:
            fut.result()
            created.append(name)
        except Exception as exc:  # noqa: BLE001 — "already exists" from a concurrent creator is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise
    return created
