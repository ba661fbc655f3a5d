// Package ledger defines the gateway's usage records and writes them
// durably without slowing the request path.
//
// A Record describes one upstream attempt of one client request. A request
// may take several attempts (retries, fallbacks); exactly one record per
// served request is Billable. Stores (internal/store/sqlite and
// internal/store/postgres) implement Recorder: inserts are idempotent on
// (RequestID, Attempt), and a partial unique index refuses a second
// billable record for a RequestID.
//
// Writer puts a bounded queue in front of a Recorder and commits records
// in batches from one goroutine, with an explicit overflow policy. A
// Recorder that is also a Batcher (SQLite) takes each batch in pieces as
// its records arrive and commits it once.
//
// Usage reports aggregate records by provider, model, key, team or
// workload, with exact token and money sums.
package ledger
