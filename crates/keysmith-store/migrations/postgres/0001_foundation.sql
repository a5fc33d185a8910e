-- Organizations, principals (users and, later, service accounts), sessions and keys.
-- Times are Unix milliseconds (UTC). No secret is ever stored: keys and session
-- tokens as SHA-256 digests, passwords as argon2id PHC strings.

CREATE TABLE orgs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           TEXT    NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'service_account')),
    username       TEXT    NOT NULL,
    email          TEXT,
    password_hash  TEXT,
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     BIGINT  NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE org_members (
    org_id      BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT   NOT NULL CHECK (role IN ('admin', 'member')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE sessions (
    token_digest  BYTEA  PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_keys (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id              TEXT   NOT NULL UNIQUE,
    digest              BYTEA  NOT NULL UNIQUE,
    format              TEXT   NOT NULL CHECK (format IN ('v1', 'legacy')),
    display             TEXT   NOT NULL,
    name                TEXT   NOT NULL,
    owner_user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by_user_id  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT
);
CREATE INDEX api_keys_owner ON api_keys (owner_user_id, created_at DESC, key_id DESC);
