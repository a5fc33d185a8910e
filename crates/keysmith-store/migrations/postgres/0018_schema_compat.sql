-- Rolling upgrades (docs/OPERATIONS.md, "Upgrading"): while replicas of two versions
-- share a database, the older one runs on the newer schema. That holds as long as each
-- migration only adds. A migration that older code cannot run against raises
-- oldest_reader to its own version; a binary whose newest migration is older than
-- oldest_reader refuses to start, with a sentence saying to upgrade it, rather than
-- misread the database.
CREATE TABLE schema_compat (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    oldest_reader  BIGINT NOT NULL
);
INSERT INTO schema_compat (id, oldest_reader) VALUES (1, 1);
