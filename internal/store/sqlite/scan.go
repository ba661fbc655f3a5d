package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
	"github.com/multipolar/multipolar/internal/pricing"
)

var _ ledger.Scanner = (*Store)(nil)

// scanRow selects each record as one JSON array rather than as 22
// columns. Through modernc.org/sqlite every column costs two or three
// calls into SQLite, each taking the connection's mutex, plus an
// allocation; reading the columns one by one was about 1.5 times slower.
// json_array renders integers exactly and escapes text unambiguously
// (NULs included), and rowDecoder reads it with one allocation, the
// request id. The prices and route are not read.
const scanRow = `json_array(ts, attempt, input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
	estimated, billable, stream, status, latency_ms,
	request_id, api_key, team, workload, model, provider, upstream_model, outcome, cost, agreements)`

func scanSQL(f ledger.ScanFilter) (string, []any) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		where, args = append(where, "ts < ?"), append(args, f.To.UnixMicro())
	}
	if f.BillableOnly {
		where = append(where, "billable = 1")
	}
	q := "SELECT " + scanRow + " FROM usage_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	// The BINARY collation orders request ids byte-wise. The ts index
	// gives the order of ts; SQLite sorts only each run of equal ts.
	return q + " ORDER BY ts, request_id, attempt", args
}

// Scan implements ledger.Scanner on the read pool. It holds one read
// connection, and so one WAL snapshot, for the whole scan.
//
// Stepping the query is most of a scan's work, so a goroutine does it,
// handing rows over in batches, while the calling goroutine decodes them
// and runs fn: the two overlap. The goroutine has ended when Scan returns.
func (s *Store) Scan(ctx context.Context, f ledger.ScanFilter, fn func(*ledger.Record) error) error {
	ctx, cancel := context.WithCancel(ctx) // stops the reader when Scan returns early
	defer cancel()
	q, args := scanSQL(f)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	full := make(chan *rowBatch, scanBatches)
	free := make(chan *rowBatch, scanBatches)
	for range scanBatches {
		free <- new(rowBatch)
	}
	var readErr error // set before full is closed
	go func() {
		defer close(full)
		defer rows.Close()
		readErr = readRows(ctx, rows, full, free)
	}()
	if err := decodeRows(ctx, full, free, fn); err != nil {
		cancel()
		for range full { // wait for the reader to close rows and end
		}
		return err
	}
	if readErr != nil {
		return fmt.Errorf("scan records: %w", readErr)
	}
	return nil
}

// Batches in flight between the reader and the decoder, and rows in each.
const (
	scanBatches   = 4
	scanBatchRows = 256
)

// rowBatch holds scanned rows end to end in one buffer.
type rowBatch struct {
	buf  []byte
	ends []int // row i is buf[ends[i-1]:ends[i]]
}

func (b *rowBatch) add(row string) {
	b.buf = append(b.buf, row...)
	b.ends = append(b.ends, len(b.buf))
}

func (b *rowBatch) row(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

// readRows steps rows, sending batches of them on full and taking empty
// ones from free, until the rows or ctx end.
func readRows(ctx context.Context, rows *sql.Rows, full chan<- *rowBatch, free <-chan *rowBatch) error {
	var b *rowBatch
	var row string
	for rows.Next() {
		if b == nil {
			select {
			case b = <-free:
				b.buf, b.ends = b.buf[:0], b.ends[:0]
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := rows.Scan(&row); err != nil { // a string from the driver: no copy
			return err
		}
		b.add(row)
		if len(b.ends) == scanBatchRows {
			select {
			case full <- b:
				b = nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if b != nil {
		select {
		case full <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// decodeRows decodes the batches from full, passing each record to fn,
// and returns the batches to free.
func decodeRows(ctx context.Context, full <-chan *rowBatch, free chan<- *rowBatch, fn func(*ledger.Record) error) error {
	var (
		r    ledger.Record
		dec  rowDecoder
		done = ctx.Done()
	)
	for b := range full {
		for i := range b.ends {
			select {
			case <-done:
				return ctx.Err()
			default:
			}
			if err := dec.decode(&r, b.row(i)); err != nil {
				return fmt.Errorf("scan records: %w", err)
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		free <- b // never blocks: free has room for every batch
	}
	return nil
}

// errRowFormat reports a scanned row that is not the JSON array scanRow
// makes.
var errRowFormat = errors.New("malformed scan row")

// rowDecoder decodes scanRow values. It keeps state between rows and is
// not safe for concurrent use.
type rowDecoder struct {
	strs    ledger.Interner
	agreed  ledger.AgreementsCache
	scratch []byte // unescaped text
}

// decode fills r from row, a JSON array of scanRow's values.
func (d *rowDecoder) decode(r *ledger.Record, row []byte) error {
	p := jsonRow{b: row}
	ts := p.int()
	r.Attempt = int(p.int())
	r.Usage.InputTokens = p.int()
	r.Usage.OutputTokens = p.int()
	r.Usage.CachedTokens = p.int()
	r.Usage.CacheWriteTokens = p.int()
	r.Usage.ReasoningTokens = p.int()
	r.Estimated = p.int() != 0
	r.Billable = p.int() != 0
	r.Stream = p.int() != 0
	r.Status = int(p.int())
	r.LatencyMs = p.int()
	r.RequestID = string(d.text(&p)) // unique to the record: not interned
	r.Key = d.strs.Get(d.text(&p))
	r.Team = d.strs.Get(d.text(&p))
	r.Workload = d.strs.Get(d.text(&p))
	r.Model = d.strs.Get(d.text(&p))
	r.Provider = d.strs.Get(d.text(&p))
	r.UpstreamModel = d.strs.Get(d.text(&p))
	r.Outcome = d.strs.Get(d.text(&p))
	cost := d.text(&p)
	_, agreements, _ := p.str() // the cache key: the literal, escaped
	p.end()
	if p.err != nil {
		return fmt.Errorf("%w: %w", errRowFormat, p.err)
	}
	r.Time = time.UnixMicro(ts).UTC()
	var err error
	if r.Cost, err = pricing.ParseMoneyBytes(cost); err != nil {
		return fmt.Errorf("%q/%d: %w", r.RequestID, r.Attempt, err)
	}
	if r.Agreements, err = d.agreed.Decode(agreements, unquoteJSON); err != nil {
		return fmt.Errorf("%q/%d: agreements: %w", r.RequestID, r.Attempt, err)
	}
	return nil
}

// text returns the next string value, unescaped. The result is valid
// until the next call.
func (d *rowDecoder) text(p *jsonRow) []byte {
	content, _, escaped := p.str()
	if !escaped {
		return content
	}
	d.scratch, p.err = unescapeJSON(d.scratch[:0], content)
	return d.scratch
}

// jsonRow reads the values of a JSON array as SQLite's json_array writes
// it: no whitespace, integers and strings only. The first error sticks;
// later reads return zero values.
type jsonRow struct {
	b     []byte // not yet read
	begun bool
	err   error
}

var (
	errRowSyntax   = errors.New("syntax error")
	errRowOverflow = errors.New("integer out of range")
)

// delim consumes the '[' before the first value or the ',' before others.
func (p *jsonRow) delim() bool {
	if p.err != nil {
		return false
	}
	want := byte(',')
	if !p.begun {
		want, p.begun = '[', true
	}
	if len(p.b) == 0 || p.b[0] != want {
		p.err = errRowSyntax
		return false
	}
	p.b = p.b[1:]
	return true
}

// int reads an integer that fits an int64.
func (p *jsonRow) int() int64 {
	if !p.delim() {
		return 0
	}
	b := p.b
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if n > (limit-d)/10 {
			p.err = errRowOverflow
			return 0
		}
		n = n*10 + d
	}
	if i == 0 {
		p.err = errRowSyntax
		return 0
	}
	p.b = b[i:]
	if neg {
		return int64(-n) // -(1<<63) wraps to itself, which is right
	}
	return int64(n)
}

// str reads a string and returns its content, still escaped, the whole
// literal, quotes included, and whether the content holds escapes.
func (p *jsonRow) str() (content, literal []byte, escaped bool) {
	if !p.delim() {
		return nil, nil, false
	}
	b := p.b
	if len(b) == 0 || b[0] != '"' {
		p.err = errRowSyntax
		return nil, nil, false
	}
	i := 1 + bytes.IndexByte(b[1:], '"')
	if i > 0 && bytes.IndexByte(b[1:i], '\\') < 0 { // the common case, found fast
		p.b = b[i+1:]
		return b[1:i], b[:i+1], false
	}
	for i = 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++ // skip the escaped byte, which may be '"'
		case '"':
			p.b = b[i+1:]
			return b[1:i], b[:i+1], escaped
		}
	}
	p.err = errRowSyntax
	return nil, nil, false
}

// end checks that the array is complete.
func (p *jsonRow) end() {
	if p.err == nil && (len(p.b) != 1 || p.b[0] != ']') {
		p.err = errRowSyntax
	}
}

// unescapeJSON appends the unescaped content of a JSON string to dst.
// Bytes other than escapes are copied as they are, so text that is not
// valid UTF-8 comes back unchanged, as encoding/json would not do.
func unescapeJSON(dst, s []byte) ([]byte, error) {
	dst, ok := jsonscan.AppendUnescaped(dst, s)
	if !ok {
		return dst, errRowSyntax
	}
	return dst, nil
}

// unquoteJSON returns the text of lit, a JSON string literal whose quotes
// the row decoder has checked.
func unquoteJSON(lit []byte) ([]byte, error) { return unescapeJSON(nil, lit[1:len(lit)-1]) }
