package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/opa"
)

// Querier is the part of opa.Client the gateway uses.
type Querier interface {
	Query(ctx context.Context, body []byte) (opa.Result, error)
}

// decider asks OPA through a circuit breaker and turns its answer into
// allow, deny or a fault.
type decider struct {
	opa     Querier
	breaker *breaker.Breaker
	log     *slog.Logger
	now     func() time.Time
	metrics Metrics // nil: not counted

	// Warnings about answers a policy gives for every request once it gives
	// them at all, one per kind (see warnLimit).
	warnUndefined, warnNotBoolean, warnNoAllowed, warnObjectLimit warnLimit
}

// warnObject is parseObject's warning: one line per warnEvery for all the
// ways an object decision can be unusable.
func (d *decider) warnObject(msg string, args ...any) {
	d.warnObjectLimit.warn(d.log, d.now(), msg, args...)
}

// warnEvery is the least time between two lines of one kind of warning.
const warnEvery = 10 * time.Second

// warnLimit lets one kind of warning through at most once per warnEvery. A
// wrong OPA_AUTHZ_URL or a policy that answers an object without a boolean
// allowed does so for every request: a line each would flood the log under
// load. The next line that passes says in "suppressed" how many were
// dropped since the previous one. Metrics still count every decision.
type warnLimit struct {
	next       atomic.Int64 // unix nanos before which lines are dropped
	suppressed atomic.Int64
}

func (w *warnLimit) warn(log *slog.Logger, now time.Time, msg string, args ...any) {
	w.log(log, slog.LevelWarn, now, msg, args...)
}

// log is warn at another level (authgate's refused credentials are an
// error, repeated for every request).
func (w *warnLimit) log(log *slog.Logger, level slog.Level, now time.Time, msg string, args ...any) {
	n := w.next.Load()
	if now.UnixNano() < n || !w.next.CompareAndSwap(n, now.Add(warnEvery).UnixNano()) {
		w.suppressed.Add(1)
		return
	}
	if s := w.suppressed.Swap(0); s > 0 {
		args = append(args, "suppressed", s)
	}
	log.Log(context.Background(), level, msg, args...)
}

// decision is the verdict on one request.
type decision struct {
	allowed bool
	id      string        // OPA's decision_id, when decision logging is on
	reason  string        // why a deny, for the access log
	rich    *richDecision // set by an object decision (decision.go)
}

var errPolicyDenied = &fault.Error{Kind: fault.Forbidden, Code: "access_denied", Description: "denied by policy"}

// decide posts body (a complete {"input": ...} document). Errors are
// *fault.Error of kind Unavailable; a deny is a decision, not an error.
func (d *decider) decide(ctx context.Context, body []byte) (decision, error) {
	done, err := d.breaker.Allow()
	if err != nil {
		return decision{}, err
	}
	start := time.Now()
	r, err := d.opa.Query(ctx, body)
	took := time.Since(start)
	if err != nil {
		err = &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "policy engine unavailable", Err: err}
	}
	done(err)
	if err != nil {
		d.count("error", took)
		return decision{}, err
	}
	dec := d.read(r)
	switch {
	case !r.Defined:
		d.count("undefined", took)
	case dec.allowed:
		d.count("allow", took)
	default:
		d.count("deny", took)
	}
	return dec, nil
}

// count reports one answered query to the metrics. An object decision
// counts by the verdict drawn from it, so it is decoded once.
func (d *decider) count(result string, took time.Duration) {
	if d.metrics != nil {
		d.metrics.OPA(result, took)
	}
}

// read turns OPA's answer into allow or deny.
func (d *decider) read(r opa.Result) decision {
	switch {
	case r.Allowed():
		return decision{allowed: true, id: r.DecisionID}
	case !r.Defined:
		d.warnUndefined.warn(d.log, d.now(), "opa decision undefined; denying (is OPA_AUTHZ_URL the right rule?)")
		return decision{id: r.DecisionID, reason: "policy decision undefined"}
	case r.Value[0] == '{':
		o := parseObject(r.Value, d.warnObject)
		if o.reason == reasonNoAllowed {
			d.warnNoAllowed.warn(d.log, d.now(), "opa decision object has no boolean allowed (or allow); denying")
		}
		o.id = r.DecisionID
		return o
	case string(r.Value) != "false":
		d.warnNotBoolean.warn(d.log, d.now(), "opa decision is not a boolean; denying", "bytes", len(r.Value))
		return decision{id: r.DecisionID, reason: "policy decision not a boolean"}
	}
	return decision{id: r.DecisionID, reason: "policy denied"}
}
