package authz

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/pkg/opa"
)

// Decider decides whether a request may pass.
type Decider interface {
	// Decide returns the policy's verdict on in. A deny is a Decision, not
	// an error. Errors are *fault.Error: Unavailable when the policy engine
	// could not answer, HeadersTooLarge when in's headers are past the
	// input's bounds (OPA is then not asked).
	Decide(ctx context.Context, in *Input) (Decision, error)
}

// Querier is the part of opa.Client that OPA uses.
type Querier interface {
	Query(ctx context.Context, body []byte) (opa.Result, error)
}

// Metrics is told of every query that reached OPA.
type Metrics interface {
	// OPA counts and times one query: result is allow, deny, undefined or
	// error.
	OPA(result string, d time.Duration)
}

// OPA is the Decider that asks Open Policy Agent's Data API.
type OPA struct {
	Client Querier
	// Timeout bounds one query (OPA_TIMEOUT); 0 means none beyond ctx.
	Timeout time.Duration
	Log     *slog.Logger
	Metrics Metrics // nil: not counted
	// Now is the clock of the rate-limited warnings; nil means time.Now.
	Now func() time.Time

	// Warnings about answers a policy gives for every request once it gives
	// them at all, one limit per kind.
	warnUndefined, warnNotBoolean, warnNoAllowed, warnObject lograte.Limit
}

var _ Decider = (*OPA)(nil)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Decide implements Decider.
func (o *OPA) Decide(ctx context.Context, in *Input) (Decision, error) {
	bp := bufPool.Get().(*[]byte)
	body, err := in.AppendJSON((*bp)[:0])
	if err != nil {
		*bp = body[:0]
		bufPool.Put(bp)
		return Decision{}, err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	start := time.Now()
	r, err := o.Client.Query(ctx, body)
	took := time.Since(start)
	if err != nil {
		// The transport may still hold body after a failed call; only a
		// completed one gives the buffer back.
		o.count("error", took)
		return Decision{}, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "policy engine unavailable", Err: err}
	}
	*bp = body
	bufPool.Put(bp)
	d := o.read(r)
	switch {
	case !r.Defined:
		o.count("undefined", took)
	case d.Allowed:
		o.count("allow", took)
	default:
		o.count("deny", took)
	}
	return d, nil
}

// count reports one answered query. An object decision counts by the
// verdict drawn from it, so it is decoded once.
func (o *OPA) count(result string, took time.Duration) {
	if o.Metrics != nil {
		o.Metrics.OPA(result, took)
	}
}

// warn logs one of the policy warnings, rate-limited by l.
func (o *OPA) warn(l *lograte.Limit, msg string, args ...any) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	l.Log(o.Log, slog.LevelWarn, now(), msg, args...)
}

// read turns OPA's answer into allow or deny.
func (o *OPA) read(r opa.Result) Decision {
	switch {
	case r.Allowed():
		return Decision{Allowed: true, ID: r.DecisionID}
	case !r.Defined:
		o.warn(&o.warnUndefined, "opa decision undefined; denying (is OPA_AUTHZ_URL the right rule?)")
		return Decision{ID: r.DecisionID, Reason: ReasonUndefined}
	case r.Value[0] == '{':
		d := parseObject(r.Value, func(msg string, args ...any) { o.warn(&o.warnObject, msg, args...) })
		if d.Reason == reasonNoAllowed {
			o.warn(&o.warnNoAllowed, "opa decision object has no boolean allowed (or allow); denying")
		}
		d.ID = r.DecisionID
		return d
	case string(r.Value) != "false":
		o.warn(&o.warnNotBoolean, "opa decision is not a boolean; denying", "bytes", len(r.Value))
		return Decision{ID: r.DecisionID, Reason: ReasonNotBoolean}
	}
	return Decision{ID: r.DecisionID, Reason: ReasonDenied}
}

// Guarded is a Decider behind a circuit breaker: only Unavailable errors
// count against it, and while it is open Decide fails at once.
type Guarded struct {
	Next    Decider
	Breaker *breaker.Breaker
}

var _ Decider = (*Guarded)(nil)

// Decide implements Decider.
func (g *Guarded) Decide(ctx context.Context, in *Input) (Decision, error) {
	done, err := g.Breaker.Allow()
	if err != nil {
		return Decision{}, err
	}
	d, err := g.Next.Decide(ctx, in)
	done(err)
	return d, err
}
