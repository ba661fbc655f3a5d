package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadEmbedded(t *testing.T) {
	for _, d := range []Dialect{SQLite, Postgres} {
		ms, err := Load(d)
		if err != nil {
			t.Fatalf("Load(%s): %v", d, err)
		}
		if ms[0].Version != 1 || !strings.Contains(ms[0].SQL, "usage_records") {
			t.Errorf("Load(%s)[0] = %d %s", d, ms[0].Version, ms[0].Name)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, "gap"},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, "duplicate"},
		{"bad name", []string{"init.sql"}, "positive version"},
		{"zero", []string{"0000_a.sql"}, "positive version"},
		{"empty", []string{"README"}, "none found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys["d/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			_, err := load(fsys, "d")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("load(%v) = %v, want error containing %q", tc.files, err, tc.want)
			}
		})
	}
	ms, err := load(fstest.MapFS{"d/0002_b.sql": {}, "d/0001_a.sql": {}}, "d")
	if err != nil || ms[0].Name != "0001_a" || ms[1].Version != 2 {
		t.Errorf("load sorted = %v, %v", ms, err)
	}
}
