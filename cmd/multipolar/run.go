package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); otherwise
// the module version from the build info is used.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

const usage = `usage: multipolar <command> [flags]

commands:
  serve     --config PATH [--listen ADDR]   run the gateway (default config ./multipolar.yaml)
  validate  --config PATH                   check a configuration and print every problem
  demo      [--listen ADDR] [--ledger PATH] run the gateway in front of a built-in fake upstream
  usage     --config PATH [--from D] [--to D] [--group-by provider,model,key,team,workload] [--format table|csv|json]
                                            print usage and cost from the ledger
  settle    --config PATH --period YYYY-MM [--format table|csv|json]
                                            print the period's statement per counterparty
  simulate  --config OTHER --period YYYY-MM [--baseline PATH] [--format table|json]
                                            replay the recorded period through another configuration
  version                                   print the version
`

// run is the whole program, testable: it returns the exit code.
func run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], env, stderr)
	case "validate":
		return validate(args[1:], env, stdout, stderr)
	case "demo":
		err = demo(ctx, args[1:], stdout, stderr)
	case "usage":
		err = usageCmd(ctx, args[1:], env, stdout, stderr)
	case "settle":
		err = settleCmd(ctx, args[1:], env, stdout, stderr, time.Now())
	case "simulate":
		err = simulateCmd(ctx, args[1:], env, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "multipolar %s\n", versionString())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "multipolar: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			return 2 // the flag package already printed the problem and usage
		}
		fmt.Fprintf(stderr, "multipolar: %v\n", err)
		return 1
	}
	return 0
}

// usageError is a command line the flag package could not parse; it exits 2
// like every other usage mistake.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

type serveFlags struct {
	config, listen, logLevel string
}

func parseServeFlags(name string, args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "multipolar.yaml", "configuration file")
	fs.StringVar(&f.listen, "listen", "", "listen address (overrides the configuration's listen)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level (overrides log.level): debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	if f.listen != "" {
		if _, _, err := net.SplitHostPort(f.listen); err != nil {
			errs = append(errs, fmt.Errorf("--listen %q: %w", f.listen, err))
		}
	}
	switch f.logLevel {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel))
	}
	return f, errors.Join(errs...)
}

func newLogger(cfg *config.Config, level *slog.LevelVar, w io.Writer) *slog.Logger {
	lc := cfg.Log
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func serve(ctx context.Context, args []string, env func(string) (string, bool), stderr io.Writer) error {
	f, err := parseServeFlags("serve", args, stderr)
	if err != nil {
		return err
	}
	// Catch SIGHUP before anything slow: its default action would kill a
	// process that is still starting.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	load := func() (*config.Config, error) { return config.Load(f.config, env) }
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration %s:\n%w", f.config, err)
	}
	return serveConfig(ctx, cfg, load, f, hup, stderr)
}

// serveConfig runs the gateway on cfg until ctx ends. A signal on hup (nil
// for none) reloads.
func serveConfig(ctx context.Context, cfg *config.Config, load func() (*config.Config, error), f serveFlags, hup <-chan os.Signal, stderr io.Writer) error {
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	var pinned *slog.LevelVar // reloads leave a --log-level alone
	if f.logLevel != "" {
		level.Set(config.Log{Level: f.logLevel}.SlogLevel())
	} else {
		pinned = level
	}
	sink := newLogSink(stderr, 200*time.Millisecond)
	defer sink.Close()
	logger := newLogger(cfg, level, sink)
	srv, err := server.New(server.Options{Config: cfg, Load: load, Logger: logger, LogLevel: pinned, Version: versionString()})
	if err != nil {
		return err
	}
	addr := cfg.Listen
	if f.listen != "" {
		addr = f.listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_, _ = srv.Reload() // logged by Reload either way
			}
		}
	}()
	return srv.Serve(ctx, ln)
}

func validate(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "multipolar.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "multipolar validate: unexpected arguments %q (use --config PATH)\n", fs.Args())
		return 2
	}
	cfg, err := config.Load(*path, env)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d problem(s):\n%v\n", *path, len(ce.Problems), err)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid: %s\n", *path, cfg.Summary())
	return 0
}
