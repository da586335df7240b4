-- The poller: one schedule per pulled source, and the cached OAuth2 tokens it holds for it.

CREATE TABLE poll_sources (
    poll_id         bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    provider        text NOT NULL,
    base_url        text NOT NULL,
    auth_kind       text NOT NULL,
    credentials_enc bytea NOT NULL,                 -- SecretBox(JSON object of the auth kind's fields)
    options         jsonb NOT NULL DEFAULT '{}',    -- endpoints, locations, facilities, token_url, …
    interval_s      integer NOT NULL CHECK (interval_s >= 1),
    state           jsonb NOT NULL DEFAULT '{}',    -- window cursors per endpoint, pending refetches
    next_run_at     timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,                    -- a poller instance is pulling it until then
    last_run_at     timestamptz,
    last_status     text,
    last_error      text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider)
);
CREATE INDEX poll_sources_due ON poll_sources (next_run_at) WHERE enabled;

CREATE TABLE poll_tokens (
    poll_id           bigint PRIMARY KEY REFERENCES poll_sources ON DELETE CASCADE,
    access_token_enc  bytea NOT NULL,
    refresh_token_enc bytea,                        -- single-use refresh tokens are replaced on every refresh
    expires_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
