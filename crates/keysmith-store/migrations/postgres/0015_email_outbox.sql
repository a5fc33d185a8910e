-- Notices by email (issue 17): each message is written in the transaction that gives
-- its notice, then sent by whichever replica claims it (`locked_until`, a lease),
-- retried after a temporary failure and given up after a permanent one. No secret is
-- ever in a message: key IDs, names, owners and times only.
CREATE TABLE email_outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- One message per notice and recipient (`expiring:7:<key id>:<due>:<address>`).
    dedupe           TEXT    NOT NULL UNIQUE,
    to_address       TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending';
