-- Notices by email (issue 17): each message is written in the transaction that gives
-- its notice, then sent by whichever replica claims it (`locked_until`, a lease),
-- retried after a temporary failure and given up after a permanent one. No secret is
-- ever in a message: key IDs, names, owners and times only.
CREATE TABLE email_outbox (
    id               INTEGER PRIMARY KEY,
    -- One message per notice and recipient (`expiring:7:<key id>:<due>:<address>`).
    dedupe           TEXT    NOT NULL UNIQUE,
    to_address       TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    locked_until     INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending';
