-- Network allowlists (issue 17): where a key may be used from. Canonical CIDR blocks,
-- comma-separated (keysmith-core's `Networks`); NULL: no restriction. A key used from
-- outside any list that applies to it (its own, its service account's, each of its
-- owner's organizations') is refused.

ALTER TABLE api_keys ADD COLUMN allowed_networks TEXT;
ALTER TABLE service_accounts ADD COLUMN allowed_networks TEXT;
ALTER TABLE orgs ADD COLUMN allowed_networks TEXT;
