"""Where a stage commits to and where it rewinds to, per partition of a batch."""
from __future__ import annotations

from dataclasses import dataclass

from ingest.kafka.stage import first_offsets, next_offsets


@dataclass
class Msg:
    t: str
    p: int
    o: int

    def topic(self) -> str:
        return self.t

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o


BATCH = [Msg("a", 0, 7), Msg("a", 1, 3), Msg("a", 0, 5), Msg("b", 0, 40), Msg("a", 1, 9), Msg("a", 0, 6)]


def as_dict(tps: list) -> dict[tuple[str, int], int]:  # type: ignore[type-arg]
    return {(tp.topic, tp.partition): tp.offset for tp in tps}


def test_commit_one_past_the_last_message_of_each_partition() -> None:
    assert as_dict(next_offsets(BATCH)) == {("a", 0): 8, ("a", 1): 10, ("b", 0): 41}  # type: ignore[arg-type]


def test_rewind_to_the_first_message_of_each_partition_of_the_batch() -> None:
    assert as_dict(first_offsets(BATCH)) == {("a", 0): 5, ("a", 1): 3, ("b", 0): 40}  # type: ignore[arg-type]
