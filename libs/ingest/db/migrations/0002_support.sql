-- Support console: support users, replay jobs and their items (the replay history), the payload search
-- projection, and the indexes the console's filters need.

CREATE TABLE support_users (
    user_id      bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    token_hash   bytea NOT NULL UNIQUE,     -- sha256 of the bearer token; the token itself is never stored
    role         text NOT NULL DEFAULT 'support' CHECK (role IN ('admin', 'support')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_seen_at timestamptz
);

-- A replay job: the match set is materialised into replay_job_items when the job starts (the whole set a
-- filter matches, not a page), so progress is exact and a restarted service resumes after `cursor`.
CREATE TABLE replay_jobs (
    job_id      uuid PRIMARY KEY,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL DEFAULT 'manual',          -- manual | filter | auto-redrive | cli
    filter      jsonb NOT NULL DEFAULT '{}',
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'cancelled', 'failed')),
    rate_per_s  double precision NOT NULL,
    total       integer NOT NULL DEFAULT 0,
    done        integer NOT NULL DEFAULT 0,
    missing     integer NOT NULL DEFAULT 0,
    cursor      integer NOT NULL DEFAULT 0,               -- last replay_job_items.seq handled
    lease_owner text,
    lease_until timestamptz,
    started_at  timestamptz,
    finished_at timestamptz,
    error       text
);
CREATE INDEX replay_jobs_active ON replay_jobs (created_at) WHERE state IN ('pending', 'running');
CREATE INDEX replay_jobs_created ON replay_jobs (created_at DESC);

-- Each payload of a job; once replayed it carries its replay id: the payload's replay history.
CREATE TABLE replay_job_items (
    job_id      uuid NOT NULL REFERENCES replay_jobs ON DELETE CASCADE,
    seq         integer NOT NULL,
    raw_id      uuid NOT NULL,
    replay_id   uuid,
    replayed_at timestamptz,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX replay_job_items_raw ON replay_job_items (raw_id);

-- Search projection of raw bodies (the bodies themselves live in S3 segments). Written by the mapper, which
-- already parses every deduplicated payload: one INSERT per batch. `doc` is the parsed JSON body (small
-- bodies only), `ext_ids` the vendor ids it names (store, item, variant, merchant, order ...).
CREATE TABLE raw_search (
    raw_id      uuid NOT NULL,
    received_at timestamptz NOT NULL,
    tenant_id   text NOT NULL,
    provider    text NOT NULL,
    ext_ids     text[] NOT NULL DEFAULT '{}',
    doc         jsonb,
    PRIMARY KEY (raw_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE raw_search_default PARTITION OF raw_search DEFAULT;
CREATE INDEX raw_search_raw_id ON raw_search (raw_id);
CREATE INDEX raw_search_doc ON raw_search USING gin (doc jsonb_path_ops);
CREATE INDEX raw_search_ext_ids ON raw_search USING gin (ext_ids);

-- console filters
CREATE INDEX raw_payloads_tenant_time ON raw_payloads (tenant_id, received_at DESC);
CREATE INDEX raw_payloads_time ON raw_payloads (received_at DESC, raw_id);
CREATE INDEX failures_unresolved_mapping ON failures (tenant_id, provider) WHERE class = 'mapping' AND resolved_at IS NULL;
CREATE INDEX failures_occurred ON failures (occurred_at);
CREATE INDEX outcomes_occurred ON outcomes (occurred_at);
CREATE INDEX audit_log_target ON audit_log (target, at DESC);
