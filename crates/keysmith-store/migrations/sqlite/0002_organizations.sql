-- Teams, service accounts, the org setting that disables key creation, and the audit
-- log (issue 3).

ALTER TABLE orgs ADD COLUMN key_creation_disabled BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX teams_name ON teams (org_id, lower(name));

CREATE TABLE team_members (
    team_id     INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

-- A service account is a users row of kind 'service_account' (so keys have one kind of
-- owner) plus its scope here: one team, or (team_id NULL) the whole organization.
CREATE TABLE service_accounts (
    user_id             INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    org_id              INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    team_id             INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    description         TEXT    NOT NULL DEFAULT '',
    created_by_user_id  INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX service_accounts_team ON service_accounts (team_id);
CREATE INDEX service_accounts_org ON service_accounts (org_id);

CREATE INDEX api_keys_created ON api_keys (created_at DESC, key_id DESC);
-- The expression must match the one list_keys sorts by, or the index is not used.
CREATE INDEX api_keys_last_used ON api_keys (COALESCE(last_used_at, -1) DESC, key_id DESC);

-- Append-only: no foreign keys (entries outlive what they name) and triggers that
-- refuse every update and delete.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    actor_id        INTEGER,
    actor_name      TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    target_kind     TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    source_address  TEXT,
    detail          TEXT
);
CREATE INDEX audit_log_org ON audit_log (org_id, id DESC);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- One-time invitations: a user created without a password sets one with the token.
CREATE TABLE invites (
    token_digest  BLOB PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX invites_user ON invites (user_id);
