-- Warnings before a key lapses and about idle keys (issue 17).
--
-- One row per notice given: `kind` is `expiring:<days>` (the lead time) or
-- `unused:<org id>`; `due_at` is what the notice was about (the key's expiry, or its
-- last use), so a changed expiry or a new use arms the notices again. Inserting the
-- row is the compare-and-set that gives each notice once across replicas.
CREATE TABLE key_notices (
    key_id        TEXT    NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    due_at        INTEGER NOT NULL,
    announced_at  INTEGER NOT NULL,
    PRIMARY KEY (key_id, kind, due_at)
);

-- Warnings already given under the single 7-day notice are not given again.
INSERT INTO key_notices (key_id, kind, due_at, announced_at)
    SELECT key_id, 'expiring:7', expires_at, expiry_warned_at FROM api_keys
    WHERE expiry_warned_at IS NOT NULL AND expires_at IS NOT NULL;

-- The event `api_key.expiring_soon` is now `api_key.expiring` (with the lead time):
-- subscriptions follow.
UPDATE webhook_endpoints SET events = REPLACE(events, 'api_key.expiring_soon', 'api_key.expiring');

-- An organization's keys not used for this many days are announced as idle; 0: never.
ALTER TABLE orgs ADD COLUMN unused_key_notice_days INTEGER NOT NULL DEFAULT 0;

-- Idle keys are found by their last use, or their creation when never used.
CREATE INDEX api_keys_last_activity ON api_keys (COALESCE(last_used_at, created_at));
