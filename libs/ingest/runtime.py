"""Process-wide runtime settings of a long-running service, applied once its start-up is done."""
from __future__ import annotations

import gc

#: young generation: a stage batch (500 records) or 256 requests in flight keep a few thousand containers alive;
#: with the default 700 every batch triggered collections that found almost nothing (docs/performance.md)
GC_THRESHOLD = (10_000, 10, 10)


def settle_heap() -> None:
    """Move the start-up heap (modules, schemas, adapters, clients, pools) out of the cyclic collector's sight —
    it is never garbage, yet every full collection walked it — and raise the young generation's threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
