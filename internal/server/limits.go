package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/budget/membudget"
	"github.com/multipolar/multipolar/internal/budget/redisbudget"
	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/ratelimit/memlimit"
	"github.com/multipolar/multipolar/internal/ratelimit/redislimit"
)

// limits holds budget reservations and rate-limit counters: in memory for
// one replica, in Redis when replicas share them.
type limits struct {
	budgets budget.Store
	limiter ratelimit.Limiter
	close   func() error
	// remote is set when the state is in Redis: settling then does I/O and
	// gets a timeout of its own.
	remote bool
}

// memRecordRetention is how long, at least, the in-memory budget store remembers a
// settled or released reservation. The server settles or releases each
// reservation once, right after the answer, so a long horizon guards
// nothing, while every request's record stays on the heap that long: with
// the 7-day default the heap grew by ~300 bytes a request and the GC took
// a fifth of the CPU after 30 s at 7,000 req/s.
const memRecordRetention = time.Second

func openLimits(ctx context.Context, c config.Limits) (*limits, error) {
	if c.Driver != "redis" {
		b, err := membudget.New(membudget.Options{RecordRetention: memRecordRetention})
		if err != nil {
			return nil, err
		}
		return &limits{budgets: b, limiter: memlimit.New(), close: func() error { return nil }}, nil
	}
	opts, err := redis.ParseURL(c.URL.Value())
	if err != nil {
		return nil, fmt.Errorf("limits.url: %w", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to redis for limits: %w", err)
	}
	b, err := redisbudget.New(redisbudget.Options{Client: client, Prefix: c.Prefix})
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	l, err := redislimit.New(redislimit.Options{Client: client, Prefix: c.Prefix})
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	return &limits{budgets: b, limiter: l, close: client.Close, remote: true}, nil
}

// compileBudgets turns configured budgets into the budget package's, named
// by their owner ("key:NAME" or "team:NAME") and position.
func compileBudgets(owner string, bs []config.Budget) ([]budget.Budget, error) {
	out := make([]budget.Budget, 0, len(bs))
	for i, b := range bs {
		m, err := pricing.ParseMoney(string(b.Limit))
		if err != nil {
			return nil, err
		}
		limit, ok := ceilMicros(m)
		if !ok {
			return nil, fmt.Errorf("budget %s[%d]: limit %s is too large", owner, i, m)
		}
		loc, err := time.LoadLocation(b.Timezone)
		if err != nil {
			return nil, err
		}
		name := owner
		if i > 0 {
			name = fmt.Sprintf("%s#%d", owner, i)
		}
		cb := budget.Budget{Name: name, Limit: budget.Micros(limit), Location: loc}
		switch b.Period {
		case "daily":
			cb.Period = budget.Daily
		case "weekly":
			cb.Period = budget.Weekly
		case "monthly":
			cb.Period = budget.Monthly
		default:
			cb.Period = budget.Total
		}
		if b.Mode == "soft" {
			cb.Mode = budget.Soft
		}
		if err := cb.Validate(); err != nil {
			return nil, err
		}
		out = append(out, cb)
	}
	return out, nil
}

// ceilMicros rounds m up to whole micro-dollars, so a reservation or a
// settlement is never smaller than the exact amount.
func ceilMicros(m pricing.Money) (int64, bool) { return m.CeilMicros() }

// maxCost is the most raw can cost on any of the request's candidates (its
// routing plan: the model's tiers, a first-refusal holder, policy
// fallbacks): input
// bounded by one token per body byte (no BPE token is shorter than a byte,
// and the JSON framing outweighs per-message tokens), output by max_tokens
// or the model's maximum, each at the highest price among the routes in
// force now. An unpriced route cannot be bounded and adds nothing; such
// requests are counted as unpriced.
func (s *Server) maxCost(snap *snapshot, m *modelEntry, targets []proxy.Target, raw *llm.RawRequest, now time.Time) pricing.Money {
	out := min(outputBound(raw, m), int64(m.maxOutput)) // no model writes past its maximum
	u := pricing.Usage{InputTokens: int64(len(raw.Body)), OutputTokens: out}
	var worst pricing.Money
	for i := range targets {
		t := &targets[i]
		upstream := t.Model
		if upstream == "" {
			upstream = m.name
		}
		p, ok := lookupPrice(snap.catalog, t.Name, upstream, m.name, now)
		if !ok {
			continue
		}
		// Cached input is never dearer than input; pricing every input
		// token at the input price bounds it.
		p.CachedInput, p.CacheWrite = p.Input, maxMoney(p.Input, p.CacheWrite)
		if c := pricing.Cost(p, u); c.Cmp(worst) > 0 {
			worst = c
		}
	}
	return worst
}

func maxMoney(a, b pricing.Money) pricing.Money {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

// admit applies the key's rate limits and reserves its budgets. The
// returned reservation (zero when there are no budgets) must be settled or
// released with settle.
func (s *Server) admit(ctx context.Context, w http.ResponseWriter, snap *snapshot, key *keyEntry, m *modelEntry, targets []proxy.Target, raw *llm.RawRequest, reqID string, now time.Time) (*budget.Reservation, *apierr.Error) {
	if len(key.limits) > 0 {
		d, err := s.limits.limiter.Allow(ctx, ratelimit.Request{Limits: key.limits, Tokens: estimateTokens(raw, m), Now: now})
		if err != nil {
			return nil, apierr.Wrap(apierr.UpstreamUnavailable, err, "the rate limiter is unavailable")
		}
		d.SetHeaders(w.Header())
		if !d.Allowed {
			s.metrics.RateLimited(d.Limit)
			msg := fmt.Sprintf("Rate limit reached for %s: retry after %s.", d.Limit, ratelimit.FormatReset(d.RetryAfter))
			if d.TooLarge {
				msg = fmt.Sprintf("The request is larger than the rate limit %s allows in a minute.", d.Limit)
			}
			e := apierr.New(apierr.RateLimited, "%s", msg)
			e.RetryAfter = w.Header().Get("Retry-After")
			return nil, e
		}
	}
	if len(key.budgets) == 0 {
		return nil, nil
	}
	amount, ok := ceilMicros(s.maxCost(snap, m, targets, raw, now))
	if !ok {
		return nil, apierr.New(apierr.BadRequest, "the request's maximum cost is too large to reserve")
	}
	res, err := s.limits.budgets.Reserve(ctx, budget.Request{ID: reqID, Budgets: key.budgets, Amount: budget.Micros(amount), Now: now, TTL: snap.reqTimeout + time.Minute})
	var ee *budget.ExceededError
	switch {
	case errors.As(err, &ee):
		s.metrics.BudgetRefused(ee.Budget.Name)
		e := apierr.New(apierr.RateLimited, "%s", ee.Error()).WithCode("budget_exceeded")
		if !ee.Reset.IsZero() {
			e.RetryAfter = fmt.Sprint(int64(time.Until(ee.Reset).Seconds()) + 1)
		}
		return nil, e
	case err != nil:
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, err, "the budget store is unavailable")
	}
	for _, name := range res.SoftExceeded {
		s.metrics.SoftBudgetExceeded(name)
		s.log.Warn("soft budget exceeded", "budget", name, "key", key.name, "request_id", reqID)
	}
	return &res, nil
}

// estimateTokens is the token count a request is charged against a TPM
// limit before its usage is known: a quarter of its body, plus its output
// bound. Adjust corrects it afterwards.
func estimateTokens(raw *llm.RawRequest, m *modelEntry) int64 {
	return int64(len(raw.Body))/4 + outputBound(raw, m)
}

// outputBound is the most a request may write: its max_tokens, else its
// model's maximum (0 for an unknown model).
func outputBound(raw *llm.RawRequest, m *modelEntry) int64 {
	if raw.MaxTokens > 0 || m == nil {
		return raw.MaxTokens
	}
	return int64(m.maxOutput)
}

// settle charges the reservation with what the request cost, or releases
// it, and corrects the token estimate of the rate limits. It runs after the
// client may have gone, so it does not use the request's context.
func (s *Server) settle(ctx context.Context, key *keyEntry, m *modelEntry, raw *llm.RawRequest, r *budget.Reservation, cost pricing.Money, tokens int64, billed bool, now time.Time) {
	ctx = context.WithoutCancel(ctx)
	if s.limits.remote {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	if r != nil {
		var err error
		if billed {
			micros, _ := ceilMicros(cost)
			err = s.limits.budgets.Settle(ctx, *r, budget.Micros(micros))
		} else {
			err = s.limits.budgets.Release(ctx, *r)
		}
		if err != nil {
			s.log.Error("budget settle failed; the hold expires on its own", "key", key.name, "error", err.Error())
		}
	}
	if len(key.limits) > 0 {
		delta := tokens - estimateTokens(raw, m)
		for _, l := range key.limits {
			if l.TPM > 0 && delta != 0 {
				if err := s.limits.limiter.Adjust(ctx, l.Name, delta, now); err != nil {
					s.log.Error("rate-limit adjust failed", "limit", l.Name, "error", err.Error())
				}
			}
		}
	}
}
