package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
)

// usageCmd prints a usage report from the ledger the configuration names:
// the same figures as GET /admin/usage.
func usageCmd(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "multipolar.yaml", "configuration file (names the ledger)")
	from := fs.String("from", "", "start, inclusive (RFC 3339 or YYYY-MM-DD, UTC)")
	to := fs.String("to", "", "end, exclusive (RFC 3339 or YYYY-MM-DD, UTC)")
	groupBy := fs.String("group-by", "", "comma-separated: provider, model, key, team, workload")
	format := fs.String("format", "table", "table, csv or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		return usageError{errors.New("--format: want table, csv or json")}
	}
	q, err := server.ParseUsageQuery(*from, *to, *groupBy)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path, env)
	if err != nil {
		return fmt.Errorf("configuration %s:\n%w", *path, err)
	}
	rows, total, err := server.Usage(ctx, cfg.Ledger, q)
	if err != nil {
		return err
	}
	if *format == "json" {
		_, err = stdout.Write(server.AppendUsageJSON(nil, q, rows, total))
		return err
	}
	return server.WriteUsageTable(stdout, q, rows, total, *format == "csv")
}
