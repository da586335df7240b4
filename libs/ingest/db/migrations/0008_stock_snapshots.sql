-- Full stock snapshots (the in-house WMS): SKUs a facility's full snapshot does not list go to 0.

-- Every SKU the mapper has seen stocked per facility (one INSERT … ON CONFLICT DO NOTHING per batch).
CREATE TABLE facility_skus (
    tenant_id     text NOT NULL,
    provider      text NOT NULL,
    facility      text NOT NULL,   -- the adapter's facility scope (in-house WMS: "{tenant_id}/{facility_id}")
    sku           text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, facility, sku)
);

-- Progress of each full snapshot: pages seen (any order, redeliveries change nothing), the SKUs they list,
-- and, once every page 1..page_count is in, what its completion decided.
CREATE TABLE stock_snapshots (
    tenant_id    text NOT NULL,
    provider     text NOT NULL,
    facility     text NOT NULL,
    snapshot_id  text NOT NULL,
    as_of        timestamptz NOT NULL,
    page_count   integer NOT NULL,
    pages        integer[] NOT NULL DEFAULT '{}',
    listed       text[] NOT NULL DEFAULT '{}',  -- emptied at completion (only the verdict is needed then)
    completed_by text,                          -- rawId of the page that completed it: its re-run re-emits
    verdict      text CHECK (verdict IN ('zeroed', 'guarded', 'stale')),
    zeroed       text[] NOT NULL DEFAULT '{}',  -- SKUs set to 0 (verdict zeroed)
    would_zero   integer NOT NULL DEFAULT 0,    -- how many it would have zeroed (the guard's report)
    known        integer NOT NULL DEFAULT 0,    -- the facility's known SKUs at completion
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, facility, snapshot_id)
);
-- the newest completed snapshot of a facility (a staler one must not zero)
CREATE INDEX stock_snapshots_completed ON stock_snapshots (tenant_id, provider, facility, as_of)
    WHERE completed_by IS NOT NULL;
