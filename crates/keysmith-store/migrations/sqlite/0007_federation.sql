-- Identity federation (issue 16): an organization trusts JWT issuers by URL, a service
-- account may be an external one named by the JWT subject it accepts, and the short
-- access tokens a JWT is exchanged for are rows of api_keys marked with their issuer,
-- so they verify, expire and are revoked like keys. Times are Unix milliseconds (UTC).

CREATE TABLE jwt_issuers (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    issuer      TEXT    NOT NULL,
    -- The `aud` a JWT must carry; NULL: the organization's name.
    audience    TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX jwt_issuers_org_issuer ON jwt_issuers (org_id, issuer);
CREATE INDEX jwt_issuers_issuer ON jwt_issuers (issuer);

-- The JWT `sub` an external service account accepts (NULL: none, a built-in one).
ALTER TABLE service_accounts ADD COLUMN external_subject TEXT;
CREATE UNIQUE INDEX service_accounts_subject ON service_accounts (org_id, external_subject)
    WHERE external_subject IS NOT NULL;

-- The issuer a federated session's JWT came from (NULL: an API key).
ALTER TABLE api_keys ADD COLUMN federated_issuer TEXT;
