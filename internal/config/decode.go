package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// nodeDecoder is implemented, on pointer receivers, by types that decode
// themselves from a YAML node rather than by their Go kind: Duration,
// ByteSize, Secret and Route. Problems go to d with path; the receiver is
// left unchanged on error.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var (
	_ nodeDecoder = (*Duration)(nil)
	_ nodeDecoder = (*ByteSize)(nil)
	_ nodeDecoder = (*Secret)(nil)
	_ nodeDecoder = (*Route)(nil)
)

// maxAliasExpansions bounds how many times aliases are followed, so a small
// file cannot make the walk do unbounded work.
const maxAliasExpansions = 10_000

// decoder walks a yaml.Node tree and Go values together. It is used for
// one Parse call only.
type decoder struct {
	lookupEnv func(string) (string, bool)
	probs     *problems
	// secretRefs maps the path of each Secret to the variable it names, so
	// validation can say which variable is empty.
	secretRefs map[string]string
	aliases    int
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.probs.addAt(position{n.Line, n.Column}, path, fmt.Sprintf(format, args...))
}

// decode decodes n into v, which must be settable.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.resolve(n, path)
	if !ok {
		return
	}
	if path != "" {
		d.probs.lines[path] = position{n.Line, n.Column}
	}
	if isNull(n) {
		return // leave the zero value; defaults and validation handle it
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n, path)
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "a boolean"); ok {
			switch strings.ToLower(s) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.errorf(n, path, "cannot parse %q as a boolean", s)
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
			if err != nil {
				d.errorf(n, path, "cannot parse %q as an integer", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			i, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
			if err != nil {
				d.errorf(n, path, "cannot parse %q as a non-negative integer", s)
				return
			}
			v.SetUint(i)
		}
	case reflect.Float32, reflect.Float64:
		if s, ok := d.scalar(n, path, "a number"); ok {
			f, err := strconv.ParseFloat(s, v.Type().Bits())
			if err != nil {
				d.errorf(n, path, "cannot parse %q as a number", s)
				return
			}
			v.SetFloat(f)
		}
	default:
		// A programming error: a field of a type the walker does not know.
		d.errorf(n, path, "unsupported field type %s", v.Type())
	}
}

// resolve follows aliases.
func (d *decoder) resolve(n *yaml.Node, path string) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliasExpansions {
			if d.aliases == maxAliasExpansions+1 {
				d.errorf(n, path, "too many alias expansions (more than %d)", maxAliasExpansions)
			}
			return nil, false
		}
		if n.Alias == nil {
			return nil, false
		}
		n = n.Alias
	}
	return n, true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}

// rawScalar returns n's text without expansion, or reports that want was
// expected.
func (d *decoder) rawScalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

// scalar returns n's text with ${ENV_VAR} references expanded.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	s, ok := d.rawScalar(n, path, want)
	if !ok {
		return "", false
	}
	s, err := expand(s, d.lookupEnv)
	if err != "" {
		d.errorf(n, path, "%s", err)
		return "", false
	}
	return s, true
}

// field is one struct field reachable from YAML.
type field struct {
	index []int
	name  string
}

var fieldCache sync.Map // reflect.Type → map[string]field

// fieldsOf returns t's fields by yaml key. Fields without a yaml tag use
// their lower-cased Go name; "-" skips the field.
func fieldsOf(t reflect.Type) map[string]field {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]field)
	}
	fields := map[string]field{}
	for _, sf := range reflect.VisibleFields(t) {
		if !sf.IsExported() || sf.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fields[name] = field{index: sf.Index, name: name}
	}
	fieldCache.Store(t, fields)
	return fields
}

// mappingKeys iterates over n's key/value pairs, reporting non-string and
// duplicate keys, and calls fn for each good pair.
func (d *decoder) mappingKeys(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k, path, "merge keys (<<) are not supported")
			continue
		}
		kp := joinKey(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	d.mappingKeys(n, path, func(key string, k, val *yaml.Node) {
		kp := joinKey(path, key)
		f, ok := fields[key]
		if !ok {
			d.errorf(k, kp, "unknown field")
			return
		}
		d.decode(val, v.FieldByIndex(f.index), kp)
	})
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, path, "unsupported map key type %s", v.Type().Key())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	d.mappingKeys(n, path, func(key string, _, val *yaml.Node) {
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, joinKey(path, key))
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
	})
	v.Set(m)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends a mapping key to a path: a.b, or a["b.c"] when the key
// is not a plain word.
func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} references in s using lookup; $${ is a literal
// ${. It returns a message (not an error, to keep problems flat) on failure.
func expand(s string, lookup func(string) (string, bool)) (string, string) {
	if !strings.Contains(s, "${") {
		return s, ""
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), ""
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", "unterminated ${ reference (write $${ for a literal ${)"
		}
		name := s[i+2 : i+end]
		if !envName.MatchString(name) {
			return "", fmt.Sprintf("invalid environment variable name %q", name)
		}
		val, ok := lookup(name)
		if !ok {
			return "", fmt.Sprintf("environment variable %s is not set", name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

// decodeNode parses a Go duration string such as "5s" or "1m30s".
func (d *Duration) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path, "a duration")
	if !ok {
		return
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		dec.errorf(n, path, "cannot parse %q as a duration (e.g. \"5s\", \"1m30s\")", s)
		return
	}
	*d = Duration(v)
}

// sizeUnits are the accepted ByteSize suffixes, longest first so that "KiB"
// is tried before "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// decodeNode parses an integer or an integer with a unit: KB, MB, GB are
// decimal, KiB, MiB, GiB binary.
func (b *ByteSize) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path, "a size")
	if !ok {
		return
	}
	v, ok := parseSize(s)
	if !ok {
		dec.errorf(n, path, "cannot parse %q as a size (e.g. 1048576, \"64KiB\", \"32MiB\", \"1MB\")", s)
		return
	}
	if v < 0 {
		dec.errorf(n, path, "size must not be negative")
		return
	}
	*b = ByteSize(v)
}

func parseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil {
		return 0, false
	}
	if v > 0 && v > (1<<63-1)/mult || v < 0 && v < -(1<<63-1)/mult {
		return 0, false
	}
	return v * mult, true
}

// decodeNode accepts exactly one ${NAME} reference, so that no credential
// is ever written in the file. An empty scalar leaves the secret unset.
func (s *Secret) decodeNode(dec *decoder, n *yaml.Node, path string) {
	raw, ok := dec.rawScalar(n, path, "a ${ENV_VAR} reference")
	if !ok {
		return
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return
	}
	name, ok := strings.CutPrefix(raw, "${")
	if ok {
		name, ok = strings.CutSuffix(name, "}")
	}
	if !ok || !envName.MatchString(name) {
		dec.errorf(n, path, "secrets must be given as a ${ENV_VAR} reference, not written in the file")
		return
	}
	dec.secretRefs[path] = name
	v, set := dec.lookupEnv(name)
	if !set {
		dec.errorf(n, path, "environment variable %s is not set", name)
		return
	}
	*s = Secret(v)
}

// decodeNode accepts a provider name or {provider: NAME, model: UPSTREAM}.
func (r *Route) decodeNode(dec *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := dec.scalar(n, path, "a provider name"); ok {
			*r = Route{Provider: s}
		}
	case yaml.MappingNode:
		dec.decodeStruct(n, reflect.ValueOf(r).Elem(), path)
	default:
		dec.errorf(n, path, "expected a provider name or {provider: NAME, model: UPSTREAM_MODEL}, got %s", kindName(n))
	}
}
