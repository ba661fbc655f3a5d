package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/contract"
	"github.com/multipolar/multipolar/internal/server"
)

// settleCmd prints a period's statement from the ledger the configuration
// names, under its agreements: the same as GET /admin/settlement.
func settleCmd(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("settle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "multipolar.yaml", "configuration file (its agreements and ledger)")
	periodFlag := fs.String("period", "", "the period: YYYY-MM or YYYY (UTC)")
	format := fs.String("format", "table", "json, csv or table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	if *format != contract.FormatJSON && *format != contract.FormatCSV && *format != contract.FormatTable {
		return usageError{errors.New("--format: want json, csv or table")}
	}
	period, err := contract.ParsePeriod(*periodFlag)
	if err != nil {
		return usageError{fmt.Errorf("--period: %w", err)}
	}
	cfg, err := config.Load(*path, env)
	if err != nil {
		return fmt.Errorf("configuration %s:\n%w", *path, err)
	}
	st, err := server.Settle(ctx, cfg, period, now)
	if err != nil {
		return err
	}
	return st.Write(stdout, *format)
}

// simulateCmd replays a recorded period through another configuration.
func simulateCmd(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration to simulate (its routing, prices and agreements)")
	basePath := fs.String("baseline", "", "the configuration the period was recorded under (default: --config); its ledger is read")
	periodFlag := fs.String("period", "", "the period to replay: YYYY-MM or YYYY (UTC)")
	format := fs.String("format", "table", "json or table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	if *path == "" {
		return usageError{errors.New("--config is required")}
	}
	if *format != contract.FormatJSON && *format != contract.FormatTable {
		return usageError{errors.New("--format: want json or table")}
	}
	period, err := contract.ParsePeriod(*periodFlag)
	if err != nil {
		return usageError{fmt.Errorf("--period: %w", err)}
	}
	other, err := config.Load(*path, env)
	if err != nil {
		return fmt.Errorf("configuration %s:\n%w", *path, err)
	}
	baseline := other
	if *basePath != "" {
		if baseline, err = config.Load(*basePath, env); err != nil {
			return fmt.Errorf("configuration %s:\n%w", *basePath, err)
		}
	}
	sim, err := server.SimulateLedger(ctx, baseline.Ledger, baseline, other, period)
	if err != nil {
		return err
	}
	return sim.Write(stdout, *format)
}
