-- Rotating a webhook endpoint's signing secret without an outage: after a rotation
-- (`secret_version` + 1) deliveries are signed with the new secret and, for a grace
-- period after `secret_rotated_at`, with the previous one as well. Like the current
-- secret, the previous one is derived from the server's secret, never stored.
-- Times are Unix milliseconds (UTC); NULL: never rotated.
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_version INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN secret_rotated_at INTEGER;
