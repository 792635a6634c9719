package app

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/metrics"
	"github.com/authgate/authgate/pkg/opa"
)

// fakeQuerier answers every query with its result and error.
type fakeQuerier struct {
	QueryFn func(ctx context.Context, body []byte) (opa.Result, error)
}

var _ gateway.Querier = (*fakeQuerier)(nil)

func (f *fakeQuerier) Query(ctx context.Context, body []byte) (opa.Result, error) {
	return f.QueryFn(ctx, body)
}

func TestObservedOPAResult(t *testing.T) {
	defined := func(v string) opa.Result { return opa.Result{Defined: true, Value: json.RawMessage(v)} }
	tests := []struct {
		name   string
		result opa.Result
		err    error
		want   string
	}{
		{"true", defined(`true`), nil, "allow"},
		{"false", defined(`false`), nil, "deny"},
		{"undefined", opa.Result{}, nil, "undefined"},
		{"error", opa.Result{}, errors.New("opa: status 500"), "error"},
		{"object allowed", defined(`{"allowed":true,"headers":{"X-Tenant":"acme"}}`), nil, "allow"},
		{"object allow (APISIX, Kong)", defined(`{"allow":true}`), nil, "allow"},
		{"object allowed wins over allow", defined(`{"allowed":false,"allow":true}`), nil, "deny"},
		{"object denied", defined(`{"allowed":false,"http_status":404}`), nil, "deny"},
		{"object without allowed", defined(`{"headers":{}}`), nil, "deny"},
		{"object with a string allowed", defined(`{"allowed":"true"}`), nil, "deny"},
		{"object with another spelling of allowed", defined(`{"allowed":false,"ALLOWED":true}`), nil, "deny"},
		{"number", defined(`1`), nil, "deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := metrics.New(reg)
			o := &observedOPA{
				next:    &fakeQuerier{QueryFn: func(context.Context, []byte) (opa.Result, error) { return tt.result, tt.err }},
				observe: m.OPA,
			}
			o.Query(context.Background(), []byte(`{"input":{}}`)) //nolint:errcheck // the error is the case's own
			got := opaCounts(t, reg)
			for _, label := range []string{"allow", "deny", "undefined", "error"} {
				want := 0.0
				if label == tt.want {
					want = 1
				}
				if got[label] != want {
					t.Errorf("authgate_opa_requests_total{result=%q} = %v, want %v (all: %v)", label, got[label], want, got)
				}
			}
		})
	}
}

// opaCounts gathers authgate_opa_requests_total by result.
func opaCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "authgate_opa_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("authgate_opa_requests_total not gathered")
	}
	return out
}
