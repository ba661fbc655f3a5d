// Package redislimit is a ratelimit.Limiter in Redis, shared by every
// gateway replica. Allow is ONE Lua script that checks every limit of the
// request and charges all of them or none, atomically.
//
// Each limit name has a hash {prefix}:rl:{name} with the GCRA state for
// requests (rt, rr, rl: TAT whole µs, remainder, limit) and tokens (tt, tr,
// tl). The braces make {prefix} a Redis Cluster hash tag so one script may
// touch all of a request's limits. A key expires a little after its TAT, when
// it would be equivalent to an idle, full limit.
//
// Exactness: Go computes each cost as whole µs plus a remainder with 128-bit
// integers; the script only adds and compares integers below 2^53 (Unix time
// in µs is about 1.8e15), where Lua's doubles are exact, and stores them with
// string.format('%.0f'), never tostring (which would round to 14 digits).
// Adjust divides in Lua, so |tokensDelta| is limited to MaxAdjust and limits
// to MaxRate. Time comes from the callers (Request.Now), so replicas need
// synchronised clocks.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/ratelimit/internal/gcra"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// MaxRate is the largest RPM or TPM accepted (one trillion per minute), which
// keeps Adjust's Lua arithmetic below 2^53.
const MaxRate = 1_000_000_000_000

// MaxAdjust is the largest |tokensDelta| Adjust accepts (one hundred million).
const MaxAdjust = 100_000_000

// Options configures a Limiter.
type Options struct {
	// Client runs the scripts: a *redis.Client or *redis.ClusterClient.
	// Required.
	Client redis.Scripter
	// Prefix namespaces the keys; required.
	Prefix string
}

// Limiter is a Redis-backed GCRA limiter. It is safe for concurrent use by
// any number of goroutines and processes.
type Limiter struct {
	c      redis.Scripter
	prefix string
}

// New returns a Limiter using opts.
func New(opts Options) (*Limiter, error) {
	var errs []error
	if opts.Client == nil {
		errs = append(errs, errors.New("client is nil"))
	}
	if opts.Prefix == "" {
		errs = append(errs, errors.New("prefix is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	return &Limiter{c: opts.Client, prefix: opts.Prefix}, nil
}

func (m *Limiter) key(name string) string { return "{" + m.prefix + "}:rl:" + name }

// allowScript: KEYS one hash per limit. ARGV: now µs, then per limit 6
// values: RPM, request cost whole, remainder, TPM, token cost whole,
// remainder (limit 0 = unlimited). Returns {allowed, then per limit 8
// integers: request TAT whole/rem before, after; token TAT whole/rem before,
// after}.
var allowScript = redis.NewScript(`
local P = 60000000
local now = tonumber(ARGV[1])
local out = {0}
local put = {}
local ok = 1
local maxtat = now
for i = 1, #KEYS do
  local b = 1 + (i-1)*6
  local v = redis.call('HMGET', KEYS[i], 'rt', 'rr', 'rl', 'tt', 'tr', 'tl')
  put[i] = {}
  for k = 0, 1 do
    local L = tonumber(ARGV[b+1+3*k])
    local o = #out
    out[o+1], out[o+2], out[o+3], out[o+4] = 0, 0, 0, 0
    if L > 0 then
      local tat = tonumber(v[1+3*k]) or 0
      local rem = tonumber(v[2+3*k]) or 0
      local sl = tonumber(v[3+3*k]) or L
      if sl ~= L and rem > 0 then tat, rem = tat + 1, 0 end
      local bt, br = tat, rem
      if bt < now then bt, br = now, 0 end
      local nt, nr = bt + tonumber(ARGV[b+2+3*k]), br + tonumber(ARGV[b+3+3*k])
      if nr >= L then nt, nr = nt + 1, nr - L end
      if not (nt < now + P or (nt == now + P and nr == 0)) then ok = 0 end
      out[o+1], out[o+2], out[o+3], out[o+4] = tat, rem, nt, nr
      put[i][k] = {nt, nr, L}
      if nt > maxtat then maxtat = nt end
    end
  end
end
out[1] = ok
if ok == 1 then
  local ttl = math.floor((maxtat - now) / 1000) + 120000
  for i = 1, #KEYS do
    for k = 0, 1 do
      local s = put[i][k]
      if s then
        local f = (k == 0) and {'rt', 'rr', 'rl'} or {'tt', 'tr', 'tl'}
        redis.call('HSET', KEYS[i], f[1], string.format('%.0f', s[1]),
          f[2], string.format('%.0f', s[2]), f[3], string.format('%.0f', s[3]))
      end
    end
    local cur = redis.call('PTTL', KEYS[i])
    if cur < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
return out
`)

// adjustScript: KEYS the limit's hash. ARGV: now µs, tokens delta.
var adjustScript = redis.NewScript(`
local P = 60000000
local v = redis.call('HMGET', KEYS[1], 'tt', 'tr', 'tl')
if not v[3] then return 0 end
local now, d = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat, rem, L = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local a = math.abs(d)
local w, r = P, 0
if a < L then
  local x = a * P
  w = math.floor(x / L)
  r = x - w * L
  if r < 0 then w, r = w - 1, r + L elseif r >= L then w, r = w + 1, r - L end
end
if d > 0 then
  if tat < now then tat, rem = now, 0 end
  tat, rem = tat + w, rem + r
  if rem >= L then tat, rem = tat + 1, rem - L end
else
  tat, rem = tat - w, rem - r
  if rem < 0 then tat, rem = tat - 1, rem + L end
  if tat < now then tat, rem = now, 0 end
end
redis.call('HSET', KEYS[1], 'tt', string.format('%.0f', tat), 'tr', string.format('%.0f', rem))
local ttl = math.floor((tat - now) / 1000) + 120000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// Allow implements ratelimit.Limiter.
func (m *Limiter) Allow(ctx context.Context, req ratelimit.Request) (ratelimit.Decision, error) {
	if err := req.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	now := req.Now.UnixMicro()
	var b gcra.Builder
	keys := make([]string, len(req.Limits))
	args := make([]any, 1, 1+6*len(req.Limits))
	args[0] = now
	for i, l := range req.Limits {
		if l.RPM > MaxRate || l.TPM > MaxRate {
			return ratelimit.Decision{}, fmt.Errorf("%w: limit %q: rate above %d", ratelimit.ErrInvalid, l.Name, int64(MaxRate))
		}
		keys[i] = m.key(l.Name)
		var rw, rr, tw, tr int64
		if l.RPM > 0 {
			rw, rr, _ = gcra.Cost(1, l.RPM)
		}
		if l.TPM > 0 {
			var ok bool
			if tw, tr, ok = gcra.Cost(req.Tokens, l.TPM); !ok {
				b.TooLarge(l.Name)
				return b.Decision(), nil
			}
		}
		args = append(args, l.RPM, rw, rr, l.TPM, tw, tr)
	}
	out, err := allowScript.Run(ctx, m.c, keys, args...).Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redislimit: allow: %w", err)
	}
	if len(out) != 1+8*len(req.Limits) {
		return ratelimit.Decision{}, fmt.Errorf("redislimit: allow: reply has %d values, want %d", len(out), 1+8*len(req.Limits))
	}
	b.Start(out[0] == 1)
	for i, l := range req.Limits {
		v := out[1+8*i:]
		observe(&b, l.Name, gcra.Requests, l.RPM, v[0:4], now)
		observe(&b, l.Name, gcra.Tokens, l.TPM, v[4:8], now)
	}
	return b.Decision(), nil
}

func observe(b *gcra.Builder, name string, k gcra.Kind, l int64, v []int64, now int64) {
	if l <= 0 {
		return
	}
	next := gcra.State{Whole: v[2], Rem: v[3]}
	fits := next.Whole < now+gcra.Period || (next.Whole == now+gcra.Period && next.Rem == 0)
	b.Observe(name, k, l, gcra.State{Whole: v[0], Rem: v[1]}, next, fits, now)
}

// Adjust implements ratelimit.Limiter. |tokensDelta| must be ≤ MaxAdjust; a
// delta of a whole minute's tokens or more moves the state by one minute.
func (m *Limiter) Adjust(ctx context.Context, name string, tokensDelta int64, now time.Time) error {
	if tokensDelta == 0 {
		return nil
	}
	if tokensDelta > MaxAdjust || tokensDelta < -MaxAdjust {
		return fmt.Errorf("%w: adjust %q by %d: beyond ±%d", ratelimit.ErrInvalid, name, tokensDelta, MaxAdjust)
	}
	err := adjustScript.Run(ctx, m.c, []string{m.key(name)},
		strconv.FormatInt(now.UnixMicro(), 10), strconv.FormatInt(tokensDelta, 10)).Err()
	if err != nil {
		return fmt.Errorf("redislimit: adjust %q: %w", name, err)
	}
	return nil
}
