-- Single sign-on (issue 16): an organization may require its members to sign in to the
-- web interface through its identity provider instead of a password (its admins keep
-- theirs, so a provider that is down cannot lock the organization out).

ALTER TABLE orgs ADD COLUMN sso_required BOOLEAN NOT NULL DEFAULT FALSE;

-- The ID token claim that holds the email people are matched by: `email` (which must be
-- verified), or another the admin names, such as Entra ID's `preferred_username`.
ALTER TABLE sso_providers ADD COLUMN email_claim TEXT NOT NULL DEFAULT 'email';
