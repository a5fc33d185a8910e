-- Whether an organization lets its members mint legacy-format keys (40 lowercase hex)
-- for wandb SDKs older than 0.22.3, which reject longer keys at `wandb login` (issue 4).
ALTER TABLE orgs ADD COLUMN legacy_keys_allowed BOOLEAN NOT NULL DEFAULT FALSE;
