-- The last applied sequence number per sequenced scope (the in-house WMS numbers events per facility).
CREATE TABLE source_sequences (
    tenant_id     text NOT NULL,
    provider      text NOT NULL,
    scope         text NOT NULL,
    last_sequence bigint NOT NULL,
    last_origin   text NOT NULL,   -- input offset that applied it: a stage re-reading it is not out of order
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, scope)
);
