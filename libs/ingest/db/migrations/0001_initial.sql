-- Tenants, sources and their secrets, mappings, the raw log index, dedupe keys, written commands,
-- failures and outcomes (the ledger), API keys, idempotency keys, and the audit log.

CREATE TABLE tenants (
    tenant_id         text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    auto_create_items boolean NOT NULL DEFAULT false,
    timezone          text NOT NULL DEFAULT 'UTC',
    default_currency  text,
    default_category  text DEFAULT 'uncategorized',
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sources (
    source_id        bigserial PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    provider         text NOT NULL,
    options          jsonb NOT NULL DEFAULT '{}',
    ip_allowlist     cidr[] NOT NULL DEFAULT '{}',
    rate_limit_per_s integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider)
);

CREATE TABLE source_secrets (
    secret_id  bigserial PRIMARY KEY,
    source_id  bigint NOT NULL REFERENCES sources ON DELETE CASCADE,
    secret_enc bytea NOT NULL,            -- AES-GCM with SECRETS_KEY (nonce || ciphertext)
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX source_secrets_active ON source_secrets (source_id) WHERE revoked_at IS NULL;

CREATE TABLE mappings (
    tenant_id    text NOT NULL,
    provider     text NOT NULL,
    entity       text NOT NULL CHECK (entity IN ('merchant', 'store', 'item', 'variant')),
    external_id  text NOT NULL,
    canonical_id text NOT NULL,
    auto_created boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, entity, external_id)
);

-- The raw log index: one row per durable payload; the bytes live in S3 segment objects.
-- Partitioned by month so retention drops whole partitions.
CREATE TABLE raw_payloads (
    raw_id         uuid NOT NULL,
    received_at    timestamptz NOT NULL,
    tenant_id      text NOT NULL,
    provider       text NOT NULL,
    kind           text NOT NULL,
    family         text NOT NULL,
    route          text NOT NULL,
    segment_key    text NOT NULL,
    segment_offset bigint NOT NULL,
    segment_length bigint NOT NULL,
    sha256         text NOT NULL,
    content_type   text NOT NULL DEFAULT '',
    headers        jsonb NOT NULL DEFAULT '{}',
    size           bigint NOT NULL,
    status         text NOT NULL DEFAULT 'accepted',
    status_stage   text,
    published_at   timestamptz,
    PRIMARY KEY (raw_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE raw_payloads_default PARTITION OF raw_payloads DEFAULT;
CREATE INDEX raw_payloads_raw_id ON raw_payloads (raw_id);
CREATE INDEX raw_payloads_unpublished ON raw_payloads (received_at) WHERE published_at IS NULL;
CREATE INDEX raw_payloads_filter ON raw_payloads (tenant_id, provider, received_at DESC);
CREATE INDEX raw_payloads_status ON raw_payloads (status, received_at DESC);

CREATE TABLE dedupe_keys (
    dedupe_key text PRIMARY KEY,
    raw_id     uuid NOT NULL,
    origin     text NOT NULL,               -- topic/partition/offset of the input that claimed it
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dedupe_keys_created ON dedupe_keys (created_at);

CREATE TABLE written_commands (
    command_id uuid PRIMARY KEY,
    raw_id     uuid NOT NULL,
    origin     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX written_commands_raw ON written_commands (raw_id);

CREATE TABLE failures (
    failure_id       uuid PRIMARY KEY,
    class            text NOT NULL,
    stage            text NOT NULL,
    reason_code      text NOT NULL,
    message          text NOT NULL,
    raw_id           uuid,
    tenant_id        text,
    provider         text,
    occurred_at      timestamptz NOT NULL,
    attempt          integer NOT NULL DEFAULT 0,
    origin_topic     text,
    origin_partition integer,
    origin_offset    bigint,
    replay_id        text,
    command_id       text,
    exception        text,
    details          jsonb NOT NULL DEFAULT '{}',
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    resolution       text,
    resolution_note  text
);
CREATE INDEX failures_raw ON failures (raw_id);
CREATE INDEX failures_group ON failures (class, reason_code, provider, occurred_at DESC);
CREATE INDEX failures_tenant ON failures (tenant_id, occurred_at DESC);

CREATE TABLE outcomes (
    raw_id        uuid NOT NULL,
    replay_key    text NOT NULL DEFAULT '',
    stage         text NOT NULL,
    outcome       text NOT NULL,             -- processed | skipped
    event_type    text NOT NULL DEFAULT '',
    command_ids   text[] NOT NULL DEFAULT '{}',
    command_types text[] NOT NULL DEFAULT '{}',
    topics        text[] NOT NULL DEFAULT '{}',
    duplicate_command_ids text[] NOT NULL DEFAULT '{}',
    reason        text NOT NULL DEFAULT '',
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (raw_id, replay_key)
);

CREATE TABLE api_keys (
    key_id       bigserial PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    key_hash     bytea NOT NULL UNIQUE,     -- sha256 of the whole key; the key itself is never stored
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE idempotency_keys (
    tenant_id       text NOT NULL,
    idem_key        text NOT NULL,
    request_hash    text NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idem_key)
);

CREATE TABLE audit_log (
    audit_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    tenant_id   text,
    target      text,
    remote_addr text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
-- append-only: updates and deletes are refused
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
