// Package goldenfile compares test output with golden files kept under
// testdata, or rewrites them when the tests run with -update. The
// translation packages share it, so one flag refreshes every golden file:
//
//	go test ./internal/ingress/... ./internal/provider/... -update
package goldenfile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files instead of comparing with them")

// Check compares got with the file at path, or, under -update, writes got
// to it.
func Check(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// Files returns the files under testdata that glob matches, failing tb
// when there is none.
func Files(tb testing.TB, glob string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no testdata/%s", glob)
	}
	return files
}

// Cases returns the names of the cases whose inputs are testdata/glob+suffix:
// each file's base name without suffix (testdata/request/*, ".in.json" →
// "tools" for testdata/request/tools.in.json).
func Cases(tb testing.TB, glob, suffix string) []string {
	tb.Helper()
	files := Files(tb, glob+suffix)
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), suffix)
	}
	return names
}
