-- Partner API and webhook security: a per-key rate limit, and the indexes the receiver's lookups use.

-- requests per second for one API key; NULL = the receiver's default (PARTNER_RATE_LIMIT_PER_S)
ALTER TABLE api_keys ADD COLUMN rate_limit_per_s integer CHECK (rate_limit_per_s IS NULL OR rate_limit_per_s > 0);
ALTER TABLE sources ADD CONSTRAINT sources_rate_limit_positive
    CHECK (rate_limit_per_s IS NULL OR rate_limit_per_s > 0);

-- idempotency records are kept for a retention window; purges scan by age
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
-- the support views list auth failures and key events per tenant
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at DESC);
