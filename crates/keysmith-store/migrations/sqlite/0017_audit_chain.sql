-- A hash chain over the audit log (docs/OPERATIONS.md, "The audit hash chain"): each
-- entry, once sealed, holds SHA-256(the entry before's hash || the entry's canonical
-- encoding), hex, so that a changed, removed or inserted entry breaks every hash after
-- it. Entries are sealed in ID order, never past one still to commit (the webhook
-- outbox's rule), by whichever replica moves the chain's head first.
ALTER TABLE audit_log ADD COLUMN chain_hash TEXT;

-- The newest sealed entry and its hash; entry 0 is the start, whose hash is 64 zeros.
-- Removing the newest entries shows as a head that no entry matches.
CREATE TABLE audit_chain (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_id    INTEGER NOT NULL,
    last_hash  TEXT    NOT NULL
);
INSERT INTO audit_chain (id, last_id, last_hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Still append-only: the one change allowed is sealing, a hash set where there was none,
-- every other column as it was.
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL
          AND NEW.id = OLD.id AND NEW.org_id = OLD.org_id AND NEW.at = OLD.at
          AND NEW.actor_id IS OLD.actor_id AND NEW.actor_name = OLD.actor_name
          AND NEW.action = OLD.action AND NEW.target_kind = OLD.target_kind
          AND NEW.target = OLD.target AND NEW.source_address IS OLD.source_address
          AND NEW.detail IS OLD.detail)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
