// Package admin is the gateway's admin JSON API. It owns the contract of
// the stores it needs: KeyStore, implemented by store/sqlite and
// store/postgres, and the Key record kept there.
//
// Handler serves /admin/keys: create, list, revoke and rotate API keys.
// A key's secret is generated here, returned exactly once (in the answer
// to the create or rotate call that made it) and never stored: the store
// keeps its SHA-256 hash, which is how the gateway finds a key from the
// bearer token a client sends, plus its first characters for display.
//
// The package does no authentication; the server mounts Handler behind
// its admin-token check. It imports only the standard library, so stores
// can import it for the types without a cycle.
package admin
