-- Usage records: one row per upstream attempt.
-- Times are Unix microseconds (UTC). Money is canonical decimal TEXT, summed
-- exactly by the store's decimal_sum aggregate. agreements is a JSON array.
CREATE TABLE usage_records (
    request_id         TEXT    NOT NULL,
    attempt            INTEGER NOT NULL,
    ts                 INTEGER NOT NULL,
    api_key            TEXT    NOT NULL,
    team               TEXT    NOT NULL,
    workload           TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    upstream_model     TEXT    NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    price_input        TEXT    NOT NULL,
    price_output       TEXT    NOT NULL,
    price_cached_input TEXT    NOT NULL,
    price_cache_write  TEXT    NOT NULL,
    price_from         INTEGER NOT NULL,
    cost               TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    outcome            TEXT    NOT NULL,
    billable           INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL,
    stream             INTEGER NOT NULL,
    route              TEXT    NOT NULL,
    agreements         TEXT    NOT NULL,
    PRIMARY KEY (request_id, attempt)
);

-- Exactly one billable record per request.
CREATE UNIQUE INDEX usage_records_one_billable ON usage_records (request_id) WHERE billable = 1;

CREATE INDEX usage_records_ts ON usage_records (ts);
