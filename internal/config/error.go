package config

import (
	"cmp"
	"slices"
	"strings"
)

// Error is returned by Load and Parse when the file has problems. It lists
// every problem found, not only the first, in file order. An Error is not
// modified after it is returned.
type Error struct {
	// Problems are the individual findings, in file order.
	Problems []Problem
}

// Problem is one finding: the field path (for example providers[1].base_url)
// and what is wrong with it. Path is empty for problems of the whole file,
// such as a YAML syntax error. Message never contains a secret's value.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String returns "path: message", or the message alone when Path is empty.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error returns one "path: message" line per problem.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// position is a place in the file; the zero position means unknown.
type position struct{ line, col int }

// problems collects findings during decode and validation.
type problems struct {
	list []located
	// lines maps every decoded path to the position of its value, so that
	// validation findings can be sorted into file order too.
	lines map[string]position
	// decoded records the paths that already have a decode problem, so that
	// validation does not pile a second message onto the same field.
	decoded map[string]bool
	// validating is set once decoding is done.
	validating bool
}

type located struct {
	Problem
	pos position
	seq int
}

func newProblems() *problems {
	return &problems{lines: map[string]position{}, decoded: map[string]bool{}}
}

// addAt records a problem at an explicit position.
func (ps *problems) addAt(pos position, path, msg string) {
	if ps.validating {
		if ps.decoded[path] {
			return
		}
	} else {
		ps.decoded[path] = true
	}
	ps.list = append(ps.list, located{Problem{path, msg}, pos, len(ps.list)})
}

// add records a problem, positioned at path or its nearest recorded parent.
func (ps *problems) add(path, msg string) {
	ps.addAt(ps.positionOf(path), path, msg)
}

func (ps *problems) positionOf(path string) position {
	for path != "" {
		if pos, ok := ps.lines[path]; ok {
			return pos
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return position{}
}

// err returns nil when there are no problems, else an *Error sorted into
// file order. Problems without a position (a missing top-level section) go
// last; ties keep discovery order.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.list, func(a, b located) int {
		al, bl := a.pos.line, b.pos.line
		if al == 0 {
			al = 1 << 30
		}
		if bl == 0 {
			bl = 1 << 30
		}
		return cmp.Or(cmp.Compare(al, bl), cmp.Compare(a.pos.col, b.pos.col), cmp.Compare(a.seq, b.seq))
	})
	e := &Error{Problems: make([]Problem, len(ps.list))}
	for i, l := range ps.list {
		e.Problems[i] = l.Problem
	}
	return e
}
