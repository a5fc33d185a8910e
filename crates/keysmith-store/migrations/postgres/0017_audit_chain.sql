-- A hash chain over the audit log (docs/OPERATIONS.md, "The audit hash chain"): each
-- entry, once sealed, holds SHA-256(the entry before's hash || the entry's canonical
-- encoding), hex, so that a changed, removed or inserted entry breaks every hash after
-- it. Entries are sealed in ID order, never past one still to commit (the webhook
-- outbox's rule), by whichever replica moves the chain's head first.
ALTER TABLE audit_log ADD COLUMN chain_hash TEXT;

-- The newest sealed entry and its hash; entry 0 is the start, whose hash is 64 zeros.
-- Removing the newest entries shows as a head that no entry matches.
CREATE TABLE audit_chain (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    last_id    BIGINT NOT NULL,
    last_hash  TEXT    NOT NULL
);
INSERT INTO audit_chain (id, last_id, last_hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Still append-only: the one change allowed is sealing, a hash set where there was none,
-- every other column as it was.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL
       AND (to_jsonb(NEW) - 'chain_hash') = (to_jsonb(OLD) - 'chain_hash') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
