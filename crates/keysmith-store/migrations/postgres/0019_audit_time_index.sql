-- The audit export's `since`: where the entries at or after a time begin, found without
-- reading the whole log.
CREATE INDEX audit_log_at ON audit_log (at);
