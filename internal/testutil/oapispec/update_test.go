package oapispec

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
)

var (
	update  = flag.Bool("update", false, "regenerate testdata/*.json.gz from -specdir")
	specDir = flag.String("specdir", "../../../../shared/specs", "directory holding openai-openapi.yaml and anthropic-openapi.json")
)

// TestUpdateSpecs regenerates the embedded specs:
//
//	go test ./internal/testutil/oapispec -run TestUpdateSpecs -update [-specdir DIR]
//
// The Anthropic JSON is gzipped byte for byte; the OpenAI YAML is converted to
// JSON (key order kept) first, because decoding 3 MB of YAML takes seconds and
// JSON takes milliseconds.
func TestUpdateSpecs(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata")
	}
	src, err := os.ReadFile(filepath.Join(*specDir, "openai-openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		t.Fatalf("decode openai-openapi.yaml: %v", err)
	}
	var buf bytes.Buffer
	if err := yamlToJSON(&buf, &root); err != nil {
		t.Fatalf("convert openai-openapi.yaml: %v", err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatal("converted openai-openapi.yaml is not valid JSON")
	}
	writeGzip(t, "testdata/openai-openapi.json.gz", buf.Bytes())

	src, err = os.ReadFile(filepath.Join(*specDir, "anthropic-openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeGzip(t, "testdata/anthropic-openapi.json.gz", src)
}

func writeGzip(t *testing.T, name string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes (%d uncompressed)", name, buf.Len(), len(data))
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// yamlToJSON writes n as JSON, keeping mapping key order.
func yamlToJSON(w *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: document has %d nodes, want 1", n.Line, len(n.Content))
		}
		return yamlToJSON(w, n.Content[0])
	case yaml.AliasNode:
		return yamlToJSON(w, n.Alias)
	case yaml.MappingNode:
		w.WriteByte('{')
		for i := 0; i < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return fmt.Errorf("line %d: unsupported mapping key", k.Line)
			}
			if i > 0 {
				w.WriteByte(',')
			}
			kb, _ := json.Marshal(k.Value)
			w.Write(kb)
			w.WriteByte(':')
			if err := yamlToJSON(w, v); err != nil {
				return err
			}
		}
		w.WriteByte('}')
	case yaml.SequenceNode:
		w.WriteByte('[')
		for i, v := range n.Content {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := yamlToJSON(w, v); err != nil {
				return err
			}
		}
		w.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			w.WriteString("null")
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return err
			}
			w.WriteString(strconv.FormatBool(b))
		case "!!int", "!!float":
			if jsonNumber.MatchString(n.Value) {
				w.WriteString(n.Value) // exact, even beyond int64 or float64
				break
			}
			if n.ShortTag() == "!!float" {
				var f float64
				if err := n.Decode(&f); err != nil {
					return fmt.Errorf("line %d: float %q: %w", n.Line, n.Value, err)
				}
				if math.IsInf(f, 0) || math.IsNaN(f) {
					return fmt.Errorf("line %d: float %q has no JSON form", n.Line, n.Value)
				}
				w.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
				break
			}
			var i int64
			if err := n.Decode(&i); err != nil {
				return fmt.Errorf("line %d: int %q: %w", n.Line, n.Value, err)
			}
			w.WriteString(strconv.FormatInt(i, 10))
		case "!!str", "!!timestamp", "!!binary":
			b, _ := json.Marshal(n.Value)
			w.Write(b)
		default:
			return fmt.Errorf("line %d: unsupported tag %s", n.Line, n.ShortTag())
		}
	default:
		return fmt.Errorf("line %d: unsupported node kind %d", n.Line, n.Kind)
	}
	return nil
}
