package multipolar_test

// Repository guard tests, after Tailscale's pkgdoc_test.go and
// tstest/deptest: every package is documented, dependencies flow the way
// STYLE.md §1 says, and no package has a grab-bag name.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/multipolar/multipolar"

// pkg is the part of `go list -json` these tests read.
type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Standard   bool
	DepOnly    bool     // a dependency, not matched by ./...
	GoFiles    []string // empty for a directory of tests only
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
	Error      *struct{ Err string }
}

var (
	listOnce sync.Once
	listed   map[string]*pkg // every package ./... needs, by import path
	listErr  error
)

// packages returns the module's packages and, keyed alongside them, every
// package they depend on (standard library and third party).
func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	listOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			listErr = err
			return
		}
		cmd := exec.Command(goTool, "list", "-e", "-deps",
			"-json=ImportPath,Name,Doc,Standard,DepOnly,GoFiles,Imports,Deps,Error", "./...")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			listErr = errors.Join(err, errors.New(stderr.String()))
			return
		}
		listed = map[string]*pkg{}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			p := new(pkg)
			if err := dec.Decode(p); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				listErr = err
				return
			}
			listed[p.ImportPath] = p
		}
	})
	if listErr != nil {
		t.Fatalf("go list: %v", listErr)
	}
	return listed
}

// modulePackages returns the packages of this module, sorted by path.
func modulePackages(t *testing.T) []*pkg {
	t.Helper()
	var out []*pkg
	for _, p := range packages(t) {
		if !p.DepOnly && !p.Standard {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *pkg) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	if len(out) == 0 {
		t.Fatal("go list ./... found no packages")
	}
	return out
}

// rel returns p's path relative to the module root ("." for the root).
func rel(path string) string {
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}

func TestGoListClean(t *testing.T) {
	for _, p := range modulePackages(t) {
		if p.Error != nil {
			t.Errorf("%s: %s", rel(p.ImportPath), p.Error.Err)
		}
	}
}

func TestPackageDocs(t *testing.T) {
	for _, p := range modulePackages(t) {
		if len(p.GoFiles) == 0 {
			continue // tests only, like this directory: nothing to document
		}
		switch {
		case p.Doc == "":
			t.Errorf("%s: package %s has no package doc comment (STYLE §9)", rel(p.ImportPath), p.Name)
		case p.Name == "main":
			// A command's comment describes the program, conventionally
			// "Command name ..." or "Name ...".
		case !strings.HasPrefix(p.Doc, "Package "+p.Name+" "):
			t.Errorf("%s: package doc starts %q, want %q", rel(p.ImportPath), p.Doc, "Package "+p.Name+" ...")
		}
	}
}

// bannedNames are package names that say nothing about what is inside
// (STYLE §1).
var bannedNames = []string{"util", "common", "lib", "helpers", "schemas", "types", "handlers"}

func TestPackageNames(t *testing.T) {
	for _, p := range modulePackages(t) {
		last := p.ImportPath[strings.LastIndexByte(p.ImportPath, '/')+1:]
		for _, name := range []string{p.Name, last} {
			if slices.Contains(bannedNames, name) {
				t.Errorf("%s: package name or directory %q is banned; name the package for what it is (STYLE §1)", rel(p.ImportPath), name)
			}
		}
	}
}

// depRule is one of STYLE §1's dependency rules. Patterns are relative to
// the module root; "x/..." matches x and everything below it, "..." the
// whole module. Rules apply to non-test code and to transitive
// dependencies, as Tailscale's deptest does: routing a forbidden import
// through a third package does not make it allowed.
type depRule struct {
	// why is printed with each violation.
	why string
	// pkgs are the packages the rule constrains, except those in except.
	pkgs, except []string
	// deny are module packages none of pkgs may depend on.
	deny []string
	// stdlibOnly limits pkgs to the standard library plus allow (module
	// packages) and vendors (import path prefixes of outside modules).
	stdlibOnly bool
	allow      []string
	vendors    []string
}

var depRules = []depRule{
	{
		why:    "only cmd wires the server; nothing imports internal/server",
		pkgs:   []string{"..."},
		except: []string{"cmd/..."},
		deny:   []string{"internal/server"},
	},
	{
		why:  "nothing imports cmd/...",
		pkgs: []string{"..."},
		deny: []string{"cmd/..."},
	},
	{
		why:        "provider packages import only internal/llm, internal/apierr and the standard library",
		pkgs:       []string{"internal/provider/..."},
		except:     []string{"internal/provider/bedrock", "internal/provider/gemini"},
		stdlibOnly: true,
		allow:      []string{"internal/llm/...", "internal/apierr"},
	},
	{
		why: "provider/bedrock adds only the AWS SDK, whose SigV4 signer, event-stream codec and " +
			"credential chain the issue requires",
		pkgs:       []string{"internal/provider/bedrock"},
		stdlibOnly: true,
		allow:      []string{"internal/llm/...", "internal/apierr"},
		vendors:    []string{"github.com/aws/"},
	},
	{
		why: "provider/gemini adds only golang.org/x/oauth2 (and the metadata client it uses) " +
			"for Vertex service-account tokens",
		pkgs:       []string{"internal/provider/gemini"},
		stdlibOnly: true,
		allow:      []string{"internal/llm/...", "internal/apierr"},
		vendors:    []string{"golang.org/x/oauth2", "cloud.google.com/go/compute/metadata"},
	},
	{
		why:        "internal/llm holds the canonical types and imports only the standard library",
		pkgs:       []string{"internal/llm"},
		stdlibOnly: true,
	},
	{
		why:        "internal/apierr imports only the standard library",
		pkgs:       []string{"internal/apierr"},
		stdlibOnly: true,
	},
	{
		why:  "ingress adapters translate into llm; they do not reach the engine, the server or a provider (hub and spoke)",
		pkgs: []string{"internal/ingress/..."},
		deny: []string{"internal/proxy", "internal/server", "internal/provider/..."},
	},
	{
		why:    "internal/testutil/... is for tests; of non-test code only cmd/multipolar (the demo) may import it",
		pkgs:   []string{"..."},
		except: []string{"cmd/multipolar", "internal/testutil/..."},
		deny:   []string{"internal/testutil/..."},
	},
}

// match reports whether the module-relative path r matches pattern.
func match(pattern, r string) bool {
	if pattern == "..." {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return r == prefix || strings.HasPrefix(r, prefix+"/")
	}
	return r == pattern
}

func matchAny(patterns []string, r string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, r) })
}

// badDeps returns one line per broken rule and dependency, naming the
// import chain that brings the dependency in.
func badDeps(rules []depRule, all map[string]*pkg) []string {
	var bad []string
	for _, p := range all {
		if p.DepOnly || p.Standard {
			continue
		}
		from := rel(p.ImportPath)
		for _, r := range rules {
			if !matchAny(r.pkgs, from) || matchAny(r.except, from) {
				continue
			}
			for _, dep := range p.Deps {
				d, ok := all[dep]
				std := ok && d.Standard
				inModule := dep == module || strings.HasPrefix(dep, module+"/")
				var broken bool
				switch {
				case inModule && matchAny(r.deny, rel(dep)):
					broken = true
				case r.stdlibOnly && !std && !inModule:
					broken = !slices.ContainsFunc(r.vendors, func(v string) bool { return strings.HasPrefix(dep, v) })
				case r.stdlibOnly && !std:
					broken = !matchAny(r.allow, rel(dep))
				}
				if broken {
					bad = append(bad, from+" depends on "+relOrFull(dep)+
						" (via "+strings.Join(importChain(all, p.ImportPath, dep), " → ")+"): "+r.why)
				}
			}
		}
	}
	slices.Sort(bad)
	return bad
}

func relOrFull(path string) string {
	if path == module || strings.HasPrefix(path, module+"/") {
		return rel(path)
	}
	return path
}

// importChain returns the shortest chain of direct imports from one
// package to another, module paths shortened.
func importChain(all map[string]*pkg, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for at := to; at != ""; at = prev[at] {
				chain = append(chain, relOrFull(at))
			}
			slices.Reverse(chain)
			return chain
		}
		p, ok := all[cur]
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return []string{relOrFull(from), "?", relOrFull(to)}
}

func TestDependencyRules(t *testing.T) {
	all := packages(t)
	for _, line := range badDeps(depRules, all) {
		t.Error(line)
	}

	// A pattern that matches nothing means a rule went stale after a
	// rename; fail rather than silently protect nothing.
	mods := modulePackages(t)
	for _, r := range depRules {
		for _, pattern := range slices.Concat(r.pkgs, r.except, r.deny, r.allow) {
			if !slices.ContainsFunc(mods, func(p *pkg) bool { return match(pattern, rel(p.ImportPath)) }) {
				t.Errorf("dependency rule %q: pattern %q matches no package", r.why, pattern)
			}
		}
	}
}

// TestBadDepsReports checks the checker on a made-up module, so that a
// green TestDependencyRules means the rules hold, not that badDeps is blind.
func TestBadDepsReports(t *testing.T) {
	m := func(r string) string { return module + "/" + r }
	all := map[string]*pkg{}
	add := func(path string, std bool, imports ...string) {
		all[path] = &pkg{ImportPath: path, Standard: std, DepOnly: std, Imports: imports}
	}
	add("fmt", true)
	add("net/http", true)
	add("example.com/third", false)
	all["example.com/third"].DepOnly = true
	add(m("internal/llm"), false, "fmt")
	add(m("internal/apierr"), false, "net/http", "example.com/third")
	add(m("internal/provider/acme"), false, m("internal/llm"), m("internal/route"))
	add(m("internal/route"), false, m("internal/llm"))
	add(m("internal/ingress/openai"), false, m("internal/helper"))
	add(m("internal/helper"), false, m("internal/proxy"))
	add(m("internal/proxy"), false, m("internal/testutil/fakeupstream"))
	add(m("internal/testutil/fakeupstream"), false)
	add(m("internal/server"), false)
	add(m("cmd/multipolar"), false, m("internal/server"), m("internal/testutil/fakeupstream"))
	// Deps are the transitive closure of Imports.
	for _, p := range all {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(path string) {
			for _, imp := range all[path].Imports {
				if !seen[imp] {
					seen[imp] = true
					walk(imp)
				}
			}
		}
		walk(p.ImportPath)
		for d := range seen {
			p.Deps = append(p.Deps, d)
		}
		slices.Sort(p.Deps)
	}

	got := badDeps(depRules, all)
	want := []string{
		"internal/apierr depends on example.com/third (via internal/apierr → example.com/third): ",
		"internal/helper depends on internal/testutil/fakeupstream (via internal/helper → internal/proxy → internal/testutil/fakeupstream): ",
		"internal/ingress/openai depends on internal/proxy (via internal/ingress/openai → internal/helper → internal/proxy): ",
		"internal/ingress/openai depends on internal/testutil/fakeupstream (via internal/ingress/openai → internal/helper → internal/proxy → internal/testutil/fakeupstream): ",
		"internal/provider/acme depends on internal/route (via internal/provider/acme → internal/route): ",
		"internal/proxy depends on internal/testutil/fakeupstream (via internal/proxy → internal/testutil/fakeupstream): ",
	}
	if len(got) != len(want) {
		t.Fatalf("badDeps found %d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("badDeps[%d] = %q, want prefix %q", i, got[i], want[i])
		}
	}
}
