// Package store is the home of the gateway's persistent stores:
//
//   - store/sqlite: a single-node store on SQLite (modernc.org/sqlite, no cgo)
//   - store/postgres: a shared store on PostgreSQL (pgx/v5)
//   - store/migrations: the versioned, embedded schema of both
//   - store/storetest: the conformance suite both must pass
//
// Both stores implement ledger.Recorder and the usage query. Money is
// stored exactly: NUMERIC in PostgreSQL, canonical decimal TEXT in SQLite
// summed by an exact decimal aggregate registered with the driver. A
// scaled int64 was rejected: at 10^-12 USD resolution it overflows past
// about 9.2 million dollars, and prices may carry any number of decimals.
package store
