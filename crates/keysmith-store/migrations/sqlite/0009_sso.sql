-- Single sign-on (issue 16): the OpenID Connect providers an organization's people sign
-- in with. The client secret is never stored: only the path of the file the server
-- reads it from. Group rules are JSON: [{"group", "org_role"?, "team"?, "team_role"?}].
-- Times are Unix milliseconds (UTC).

CREATE TABLE sso_providers (
    id                  INTEGER PRIMARY KEY,
    org_id              INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    issuer              TEXT    NOT NULL,
    client_id           TEXT    NOT NULL,
    client_secret_file  TEXT    NOT NULL,
    scopes              TEXT    NOT NULL,
    groups_claim        TEXT    NOT NULL,
    jit                 BOOLEAN NOT NULL DEFAULT FALSE,
    group_rules         TEXT    NOT NULL DEFAULT '[]',
    created_at          INTEGER NOT NULL,
    created_by          INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX sso_providers_org_name ON sso_providers (org_id, lower(name));
