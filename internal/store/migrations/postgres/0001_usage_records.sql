-- Usage records: one row per upstream attempt.
-- Money is NUMERIC without a scale limit, so stored amounts and SUM() are
-- exact. agreements is a JSON array; route is kept verbatim as text.
CREATE TABLE usage_records (
    request_id         TEXT        NOT NULL,
    attempt            INTEGER     NOT NULL,
    ts                 TIMESTAMPTZ NOT NULL,
    api_key            TEXT        NOT NULL,
    team               TEXT        NOT NULL,
    workload           TEXT        NOT NULL,
    model              TEXT        NOT NULL,
    provider           TEXT        NOT NULL,
    upstream_model     TEXT        NOT NULL,
    input_tokens       BIGINT      NOT NULL,
    output_tokens      BIGINT      NOT NULL,
    cached_tokens      BIGINT      NOT NULL,
    cache_write_tokens BIGINT      NOT NULL,
    reasoning_tokens   BIGINT      NOT NULL,
    estimated          BOOLEAN     NOT NULL,
    price_input        NUMERIC     NOT NULL,
    price_output       NUMERIC     NOT NULL,
    price_cached_input NUMERIC     NOT NULL,
    price_cache_write  NUMERIC     NOT NULL,
    price_from         TIMESTAMPTZ NOT NULL,
    cost               NUMERIC     NOT NULL,
    status             INTEGER     NOT NULL,
    outcome            TEXT        NOT NULL,
    billable           BOOLEAN     NOT NULL,
    latency_ms         BIGINT      NOT NULL,
    stream             BOOLEAN     NOT NULL,
    route              TEXT        NOT NULL,
    agreements         JSONB       NOT NULL,
    PRIMARY KEY (request_id, attempt)
);

-- Exactly one billable record per request.
CREATE UNIQUE INDEX usage_records_one_billable ON usage_records (request_id) WHERE billable;

CREATE INDEX usage_records_ts ON usage_records (ts);
