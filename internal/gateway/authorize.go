package gateway

import (
	"context"
	"log/slog"

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
	r, err := d.opa.Query(ctx, body)
	if err != nil {
		err = &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "policy engine unavailable", Err: err}
	}
	done(err)
	if err != nil {
		return decision{}, err
	}
	switch {
	case r.Allowed():
		return decision{allowed: true, id: r.DecisionID}, nil
	case !r.Defined:
		d.log.Warn("opa decision undefined; denying (is OPA_AUTHZ_URL the right rule?)")
		return decision{id: r.DecisionID, reason: "policy decision undefined"}, nil
	case r.Value[0] == '{':
		d := parseObject(r.Value, d.log)
		d.id = r.DecisionID
		return d, nil
	case string(r.Value) != "false":
		d.log.Warn("opa decision is not a boolean; denying", "bytes", len(r.Value))
		return decision{id: r.DecisionID, reason: "policy decision not a boolean"}, nil
	}
	return decision{id: r.DecisionID, reason: "policy denied"}, nil
}
