package server

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/llm"
)

// ParseUsageQuery reads from, to (RFC 3339 or YYYY-MM-DD, UTC) and group_by
// (comma-separated: provider, model, key, team, workload).
func ParseUsageQuery(from, to, groupBy string) (ledger.Query, error) {
	var q ledger.Query
	var err error
	if q.From, err = parseWhen(from); err != nil {
		return q, fmt.Errorf("from: %w", err)
	}
	if q.To, err = parseWhen(to); err != nil {
		return q, fmt.Errorf("to: %w", err)
	}
	for _, g := range strings.Split(groupBy, ",") {
		if g = strings.TrimSpace(g); g != "" {
			q.GroupBy = append(q.GroupBy, g)
		}
	}
	return q, q.Validate()
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse %q (want RFC 3339 or YYYY-MM-DD)", s)
}

// usageColumns are the measures of every usage row, after its group fields.
var usageColumns = []string{"requests", "input_tokens", "output_tokens", "cached_tokens", "cost"}

func usageValues(r *ledger.Row) []string {
	return []string{strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.InputTokens, 10),
		strconv.FormatInt(r.OutputTokens, 10), strconv.FormatInt(r.CachedTokens, 10), r.BillableCost.String()}
}

// AppendUsageJSON renders a usage report: {"rows":[…],"total":{…}}. Each row
// carries the fields it was grouped by, then requests (served requests
// only), token sums and cost, the billed USD as a decimal string.
func AppendUsageJSON(b []byte, q ledger.Query, rows []ledger.Row, total ledger.Row) []byte {
	obj := func(b []byte, r *ledger.Row, groups []string) []byte {
		b = append(b, '{')
		for _, g := range groups {
			b = llm.AppendJSONString(b, g)
			b = append(b, ':')
			b = llm.AppendJSONString(b, r.Group(g))
			b = append(b, ',')
		}
		vals := usageValues(r)
		for i, c := range usageColumns {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, c...)
			b = append(b, `":`...)
			if c == "cost" {
				b = llm.AppendJSONString(b, vals[i])
			} else {
				b = append(b, vals[i]...)
			}
		}
		return append(b, '}')
	}
	b = append(b, `{"rows":[`...)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = obj(b, &rows[i], q.GroupBy)
	}
	b = append(b, `],"total":`...)
	b = obj(b, &total, nil)
	return append(b, "}\n"...)
}

// WriteUsageTable prints a usage report as an aligned table or as CSV.
func WriteUsageTable(w io.Writer, q ledger.Query, rows []ledger.Row, total ledger.Row, asCSV bool) error {
	header := append(append([]string(nil), q.GroupBy...), usageColumns...)
	line := func(r *ledger.Row, label string) []string {
		out := make([]string, 0, len(header))
		for i, g := range q.GroupBy {
			if label != "" {
				if i == 0 {
					out = append(out, label)
				} else {
					out = append(out, "")
				}
				continue
			}
			out = append(out, r.Group(g))
		}
		return append(out, usageValues(r)...)
	}
	if asCSV {
		cw := csv.NewWriter(w)
		_ = cw.Write(header)
		for i := range rows {
			_ = cw.Write(line(&rows[i], ""))
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for i := range rows {
		fmt.Fprintln(tw, strings.Join(line(&rows[i], ""), "\t")+"\t")
	}
	label := "TOTAL"
	if len(q.GroupBy) == 0 {
		label = ""
	}
	fmt.Fprintln(tw, strings.Join(line(&total, label), "\t")+"\t")
	return tw.Flush()
}

// handleUsage answers GET /admin/usage?from=&to=&group_by=.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, err := ParseUsageQuery(v.Get("from"), v.Get("to"), v.Get("group_by"))
	if err != nil {
		writeAdminJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"message": err.Error()}})
		return
	}
	rows, total, err := s.store.Usage(r.Context(), q)
	if err != nil {
		s.log.Error("usage query failed", "error", err.Error())
		writeAdminJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"message": "the usage query failed"}})
		return
	}
	w.Header()["Content-Type"] = headerJSON
	_, _ = w.Write(AppendUsageJSON(nil, q, rows, total))
}

// Usage runs a usage report against the ledger a configuration names, for
// `multipolar usage`.
func Usage(ctx context.Context, c config.Ledger, q ledger.Query) ([]ledger.Row, ledger.Row, error) {
	st, err := OpenLedger(ctx, c)
	if err != nil {
		return nil, ledger.Row{}, err
	}
	defer st.Close()
	return st.Usage(ctx, q)
}
