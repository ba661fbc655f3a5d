// Package migrations holds the stores' versioned schema as embedded SQL
// files, one directory per dialect (sqlite/, postgres/). Files are named
// NNNN_description.sql; versions start at 1 and have no gaps. A store
// applies, in order and each in its own transaction, the versions not yet
// listed in its schema_migrations table, so applying is idempotent.
// Applied files must never be edited; change the schema with a new file.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialect names a SQL dialect, which is also the directory of its files.
type Dialect string

// Dialects with migrations.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string // file name without the .sql suffix
	SQL     string
}

// Load returns the migrations of d sorted by version.
func Load(d Dialect) ([]Migration, error) {
	return load(files, string(d))
}

func load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %q: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s: name must start with a positive version and '_'", dir, name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s/%s: %w", dir, name, err)
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations %s: want version %d, found %s (duplicate or gap)", dir, i+1, m.Name)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("migrations %s: none found", dir)
	}
	return ms, nil
}
