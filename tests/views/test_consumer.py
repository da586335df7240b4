"""The views consumer in process against the real broker and Redis: apply once, restart, rebuild, recover."""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from confluent_kafka import Producer

from ingest.admin import create_topics
from ingest.canonical.commands import CommandBase, UpdatePrice, UpdateStockLevel, UpdateStoreStatus
from services.command_writer.handler import event_of, kafka_key
from services.views.app import rebuild
from services.views.consumer import ViewsConsumer
from services.views.handler import Keys
from services.views.settings import ViewsServiceSettings
from services.views.store import ViewStore

pytestmark = pytest.mark.integration
TENANT = "acme"


def command(cls: type[CommandBase], **fields: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return cls(command_id=str(uuid.uuid4()), tenant_id=TENANT, provider="inhouse-wms", raw_id=str(uuid.uuid4()),
               occurred_at=now, received_at=now, store_id="store-1", **fields).to_record()


def stock(mode: str, qty: str, item: str = "item-1") -> dict[str, Any]:
    return command(UpdateStockLevel, item_id=item, external_item_id=f"SKU-{item}", mode=mode, quantity=qty,
                   unit="each", reason="adjustment")


def publish(settings: ViewsServiceSettings, *records: dict[str, Any]) -> None:
    """Events exactly as the command writer derives and keys them."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True})
    for rec in records:
        topic, event_type, value = event_of(rec["commandType"], rec)
        producer.produce(settings.topic(topic), value=value, key=kafka_key(rec).encode(),
                         headers=[("type", event_type.encode())])
    assert producer.flush(10) == 0


class Running:
    """A ViewsConsumer on its own thread, as ``create_app`` runs it."""

    def __init__(self, settings: ViewsServiceSettings) -> None:
        self.store = ViewStore.from_url(settings.redis_url, settings.key_base)
        self.consumer = ViewsConsumer(settings, self.store)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.consumer.run()
        except BaseException as exc:  # noqa: BLE001 — surfaced by the test
            self.error = exc

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(30)
        assert not self.thread.is_alive() and self.error is None, self.error
        self.store.close()


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Iterator[ViewsServiceSettings]:
    s = ViewsServiceSettings(session_timeout_ms=6000, views_epoch_check_s=0.2)
    create_topics(s.kafka_bootstrap_servers, prefix=s.topic_prefix, partitions=2)
    yield s
    store = ViewStore.from_url(s.redis_url, s.key_base)
    store.drop_everything()
    store.close()


def availability(store: ViewStore) -> dict[str, str | None]:
    keys = store.keys()
    raw = store.client.hgetall(keys.availability(TENANT, "store-1"))
    return {k: json.loads(v)["quantity"] for k, v in raw.items()}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_consume_restart_rebuild_and_recover_apply_every_event_once(settings: ViewsServiceSettings) -> None:
    store = ViewStore.from_url(settings.redis_url, settings.key_base)
    publish(settings, stock("absolute", "10"), stock("delta", "-3"), stock("absolute", "4", item="item-2"),
            command(UpdateStoreStatus, external_store_id="DS-1", status="CLOSED"),
            command(UpdatePrice, item_id="item-1", external_item_id="SKU-item-1", amount_minor=1999,
                    currency="INR", price_type="sale"))
    run = Running(settings)
    try:
        wait_until(lambda: availability(store) == {"item-1": "7", "item-2": "4"}, "the first views")
        wait_until(lambda: store.client.hget(store.keys().status(TENANT), "store-1") is not None, "store status")
        assert run.consumer.applied == 5

        # a rebuild while the consumer runs: the old generation goes, the topics are read again, once
        result = rebuild(settings)
        assert result["epoch"] == 1 and result["deletedKeys"] >= 4
        wait_until(lambda: availability(store) == {"item-1": "7", "item-2": "4"}, "the rebuilt views")
        assert store.keys().epoch == 1
        assert not [k for k in store.client.scan_iter(match=f"{Keys(store.base, 0).root}*")]
        publish(settings, stock("delta", "-2"))
        wait_until(lambda: availability(store).get("item-1") == "5", "a delta after the rebuild")
    finally:
        run.stop()

    # a restart resumes from the committed offsets: nothing is applied again
    run = Running(settings)
    try:
        publish(settings, stock("delta", "+1", item="item-2"))
        wait_until(lambda: availability(store).get("item-2") == "5", "a delta after the restart")
        assert availability(store)["item-1"] == "5"
        assert run.consumer.applied == 1
    finally:
        run.stop()

    # Redis lost everything (no persistence): the next start re-reads every partition
    store.drop_everything()
    run = Running(settings)
    try:
        wait_until(lambda: availability(store) == {"item-1": "5", "item-2": "5"}, "views recovered from topics")
    finally:
        run.stop()
        store.close()
