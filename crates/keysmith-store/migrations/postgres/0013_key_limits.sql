-- Per-key request limits (issue 17): at most this many requests a minute (a token
-- bucket, per replica); NULL: no limit of its own.

ALTER TABLE api_keys ADD COLUMN requests_per_minute BIGINT;
