-- Results we owe a vendor (Deliverect async menus): one report per raw payload, sent by the poller.
-- The row is written before the poller commits the outcome/failure offsets that produced it (an outbox);
-- the sender then works from this table alone, with backoff, until the vendor's window closes.

CREATE TABLE vendor_callbacks (
    raw_id          uuid PRIMARY KEY,
    tenant_id       text NOT NULL,
    provider        text NOT NULL,
    url             text NOT NULL,
    result          text NOT NULL CHECK (result IN ('ONLINE', 'FAILED')),   -- what we report
    comment         text NOT NULL DEFAULT '',
    -- pending: to send; reported: the vendor answered 2xx; rejected: it answered a final 4xx;
    -- refused: the host is not allowed (never contacted); expired: the vendor's window closed first
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'reported', 'rejected', 'refused', 'expired')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,                          -- a sender is posting it until then
    deadline_at     timestamptz NOT NULL,                 -- received_at + the vendor's window
    reported_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vendor_callbacks_due ON vendor_callbacks (next_attempt_at) WHERE status = 'pending';
