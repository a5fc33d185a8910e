-- Issue 7: rotation with a grace period, expiry, where keys are used from, and
-- webhooks for key events. Times are Unix milliseconds (UTC).

-- A key stops authenticating at `expires_at` (NULL: never). A rotation's new key names
-- the key it replaced; the old key gets the grace period as its expiry.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN rotated_from TEXT;
-- When "expiring soon" was announced for this key (NULL: not yet).
ALTER TABLE api_keys ADD COLUMN expiry_warned_at BIGINT;
CREATE INDEX api_keys_expires ON api_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX api_keys_rotated_from ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL;

-- Longest lifetime of new keys, in days; 0 means no limit.
ALTER TABLE orgs ADD COLUMN max_user_key_lifetime_days BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN max_service_account_key_lifetime_days BIGINT  NOT NULL DEFAULT 0;

-- The recent distinct sources of each key, bounded per key by the store.
CREATE TABLE key_sources (
    key_id      TEXT    NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    address     TEXT    NOT NULL,
    user_agent  TEXT    NOT NULL,
    first_seen  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,
    PRIMARY KEY (key_id, address, user_agent)
);

-- Webhook endpoints of an organization. The signing secret is not stored: it is
-- derived from the server's secret, the endpoint's `uid` and `secret_version`.
CREATE TABLE webhook_endpoints (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          BIGINT  NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    uid             TEXT    NOT NULL UNIQUE,
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    secret_version  BIGINT  NOT NULL DEFAULT 1,
    created_at      BIGINT  NOT NULL,
    created_by      BIGINT  REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id);

-- Every delivery and its attempts: the delivery log an admin reads.
CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      BIGINT  NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id       TEXT    NOT NULL UNIQUE,
    event_type       TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    locked_until     BIGINT  NOT NULL DEFAULT 0,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

-- How far the audit log has been turned into deliveries (one row). Events come from
-- the audit log, which every change writes in its own transaction, so none is lost.
CREATE TABLE webhook_outbox (
    id             BIGINT  PRIMARY KEY CHECK (id = 1),
    last_audit_id  BIGINT  NOT NULL
);
INSERT INTO webhook_outbox (id, last_audit_id) SELECT 1, COALESCE(MAX(id), 0) FROM audit_log;
