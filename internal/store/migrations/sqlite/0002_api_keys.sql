-- API keys managed through the admin API. The secret is never stored:
-- hash is its SHA-256 (32 bytes), prefix its first characters for display.
-- Times are Unix microseconds (UTC); expires and revoked are NULL for
-- "never" and "active". models and budgets are JSON arrays as text.
-- Revoked keys stay, so that usage records keep a name to refer to.
CREATE TABLE api_keys (
    id       INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL CHECK (name <> ''),
    hash     BLOB    NOT NULL CHECK (length(hash) = 32),
    prefix   TEXT    NOT NULL,
    team     TEXT    NOT NULL,
    workload TEXT    NOT NULL,
    models   TEXT    NOT NULL,
    budgets  TEXT    NOT NULL,
    rpm      INTEGER NOT NULL,
    tpm      INTEGER NOT NULL,
    expires  INTEGER,
    created  INTEGER NOT NULL,
    revoked  INTEGER
);

-- Lookup of a client's bearer token; secrets are random, so hashes are unique.
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);

-- At most one active key per name.
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked IS NULL;
