-- Least-privilege keys (issue 17): what a key may do at most, narrowing its owner's
-- power (docs/DESIGN.md §3, "Scopes"). Every existing key keeps today's full power.

ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
    CHECK (scope IN ('read', 'write', 'admin'));
