-- Streamed bulk product feeds: one row per import (progress and resume checkpoint), the items each import
-- saw, and per (tenant, provider, feed) the last complete primary import (the snapshot deactivation diffs).

CREATE TABLE feed_imports (
    raw_id        uuid PRIMARY KEY,
    tenant_id     text NOT NULL,
    provider      text NOT NULL,
    feed_name     text NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('primary', 'supplemental')),
    object_key    text NOT NULL,
    size          bigint NOT NULL,
    content_type  text NOT NULL DEFAULT '',
    route         text NOT NULL DEFAULT '',
    received_at   timestamptz NOT NULL,
    origin        text NOT NULL,            -- topic/partition/offset of the import record
    record        bytea NOT NULL,           -- the Deduped envelope (Avro), so the worker needs nothing else
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'done', 'failed')),
    rows_done     bigint NOT NULL DEFAULT 0, -- resume checkpoint: records of the file already emitted
    rows_total    bigint,                    -- known once the file has been read to the end
    bytes_read    bigint NOT NULL DEFAULT 0,
    commands      bigint NOT NULL DEFAULT 0,
    failures      bigint NOT NULL DEFAULT 0,
    deactivated   bigint NOT NULL DEFAULT 0,
    error         text,
    owner         text,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX feed_imports_tenant ON feed_imports (tenant_id, created_at DESC);
CREATE INDEX feed_imports_pending ON feed_imports (created_at) WHERE state IN ('queued', 'running');

-- the catalog items one import emitted (primary rows), with what a deactivation needs
CREATE TABLE feed_import_items (
    raw_id           uuid NOT NULL REFERENCES feed_imports ON DELETE CASCADE,
    external_item_id text NOT NULL,
    item_id          text NOT NULL,
    name             text NOT NULL,
    PRIMARY KEY (raw_id, external_item_id)
);

CREATE TABLE feed_snapshots (
    tenant_id    text NOT NULL,
    provider     text NOT NULL,
    feed_name    text NOT NULL,
    raw_id       uuid NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, feed_name)
);
