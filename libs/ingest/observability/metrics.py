"""The metric names every service uses (dashboards and alert rules in deploy/ rely on them)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter("pos_ingest_http_requests_total", "HTTP requests answered",
                        ["service", "route", "method", "status"])
HTTP_DURATION = Histogram("pos_ingest_http_request_duration_seconds", "HTTP request duration",
                          ["service", "route"], buckets=LATENCY_BUCKETS)
RAWLOG_BATCH = Histogram("pos_ingest_rawlog_batch_size", "Payloads per raw-log segment",
                         buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
RAWLOG_FLUSH = Histogram("pos_ingest_rawlog_flush_seconds", "Segment PUT + metadata INSERT time",
                         buckets=LATENCY_BUCKETS)
RAW_UNPUBLISHED = Gauge("pos_ingest_raw_unpublished", "Raw rows not yet on integration.raw (sweeper backlog)")
SWEEPER_REPUBLISHED = Counter("pos_ingest_sweeper_republished_total", "Raw rows republished by the sweeper")
STAGE_MESSAGES = Counter("pos_ingest_stage_messages_total", "Stage inputs by outcome",
                         ["stage", "provider", "outcome"])
STAGE_BATCH = Histogram("pos_ingest_stage_batch_seconds", "Time to process one batch", ["stage"],
                        buckets=LATENCY_BUCKETS)
STAGE_LATENCY = Histogram("pos_ingest_stage_latency_seconds", "Receive → processed by this stage", ["stage"],
                          buckets=LATENCY_BUCKETS)
CONSUMER_LAG = Gauge("pos_ingest_consumer_lag", "Messages behind the high watermark",
                     ["stage", "topic", "partition"])
STAGE_RETRYING = Gauge("pos_ingest_stage_retrying", "1 while the stage is blocked retrying a dependency",
                       ["stage"])
FAILURES = Counter("pos_ingest_failures_total", "Failure records written", ["stage", "class", "provider"])
DLQ_WRITE_ERRORS = Counter("pos_ingest_dlq_write_errors_total", "Failure records that could not be written",
                           ["stage"])
REPLAY_JOBS = Gauge("pos_ingest_replay_jobs", "Replay jobs by state", ["state"])
REPLAYED = Counter("pos_ingest_replayed_total", "Raw payloads republished by replay")
VIEWS_APPLIED = Counter("pos_ingest_views_applied_total", "Events applied to the Redis views", ["topic"])
POLL_RUNS = Counter("pos_ingest_poll_runs_total", "Poller runs by outcome", ["provider", "status"])
POLL_DOCUMENTS = Counter("pos_ingest_poll_documents_total", "Pulled documents appended to the raw log",
                         ["provider"])
