-- SCIM provisioning (issue 16): what an identity provider wrote about a user of an
-- organization, or about a team, kept as JSON exactly as it wrote it, so that SCIM
-- reads give it back (RFC 7643 asks a service provider to return what was set, and an
-- attribute the provider removed to read back as absent). What Keysmith acts on (the
-- email, the role, whether the user is active, team membership) lives where it always
-- did; these columns only remember the provider's own words. NULL: never written by
-- SCIM. Times are Unix milliseconds (UTC).

ALTER TABLE org_members ADD COLUMN scim TEXT;
ALTER TABLE org_members ADD COLUMN scim_updated_at BIGINT;
ALTER TABLE teams ADD COLUMN scim TEXT;
ALTER TABLE teams ADD COLUMN scim_updated_at BIGINT;
