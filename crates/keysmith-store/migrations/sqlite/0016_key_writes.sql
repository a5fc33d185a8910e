-- The last request a key made that may change state (not GET or HEAD; a request
-- whose method is unknown counts), for the key report's "over-privileged" keys: a
-- write or admin key in use that made only reads for a while. Recorded in batches with
-- the last-used time.
ALTER TABLE api_keys ADD COLUMN last_write_at INTEGER;

-- Before this, every use may have been a write: the report judges old keys only by
-- what they do from now on.
UPDATE api_keys SET last_write_at = last_used_at WHERE last_used_at IS NOT NULL;
