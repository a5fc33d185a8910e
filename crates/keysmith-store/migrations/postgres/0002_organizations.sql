-- Teams, service accounts, the org setting that disables key creation, and the audit
-- log (issue 3).

ALTER TABLE orgs ADD COLUMN key_creation_disabled BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE teams (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX teams_name ON teams (org_id, lower(name));

CREATE TABLE team_members (
    team_id     BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT   NOT NULL CHECK (role IN ('admin', 'member')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

-- A service account is a users row of kind 'service_account' (so keys have one kind of
-- owner) plus its scope here: one team, or (team_id NULL) the whole organization.
CREATE TABLE service_accounts (
    user_id             BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    org_id              BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    team_id             BIGINT REFERENCES teams (id) ON DELETE CASCADE,
    description         TEXT   NOT NULL DEFAULT '',
    created_by_user_id  BIGINT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX service_accounts_team ON service_accounts (team_id);
CREATE INDEX service_accounts_org ON service_accounts (org_id);

CREATE INDEX api_keys_created ON api_keys (created_at DESC, key_id DESC);
-- The expression must match the one list_keys sorts by, or the index is not used.
CREATE INDEX api_keys_last_used ON api_keys ((COALESCE(last_used_at, -1)) DESC, key_id DESC);

-- Append-only: no foreign keys (entries outlive what they name) and a trigger that
-- refuses every update and delete.
CREATE TABLE audit_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    actor_id        BIGINT,
    actor_name      TEXT   NOT NULL,
    action          TEXT   NOT NULL,
    target_kind     TEXT   NOT NULL,
    target          TEXT   NOT NULL,
    source_address  TEXT,
    detail          TEXT
);
CREATE INDEX audit_log_org ON audit_log (org_id, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- One-time invitations: a user created without a password sets one with the token.
CREATE TABLE invites (
    token_digest  BYTEA PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX invites_user ON invites (user_id);
