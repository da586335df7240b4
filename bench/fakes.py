"""Kafka stand-ins for the in-process benches (no broker)."""
from __future__ import annotations


class FakeMessage:
    """What ``confluent_kafka.Message`` offers the runtime."""

    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes,
                 headers: list[tuple[str, bytes]]) -> None:
        self._t, self._p, self._o, self._k, self._v, self._h = topic, partition, offset, key, value, headers

    def topic(self) -> str: return self._t
    def partition(self) -> int: return self._p
    def offset(self) -> int: return self._o
    def key(self) -> bytes: return self._k
    def value(self) -> bytes: return self._v
    def headers(self) -> list[tuple[str, bytes]]: return self._h
    def error(self) -> None: return None
