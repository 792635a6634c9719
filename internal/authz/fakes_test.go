package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/pkg/opa"
)

// fakeQuerier is OPA's Data API (Querier, as opa.Client) with a function
// field.
type fakeQuerier struct {
	QueryFn func(ctx context.Context, body []byte) (opa.Result, error)
	calls   atomic.Int32
}

var _ Querier = (*fakeQuerier)(nil)

func (f *fakeQuerier) Query(ctx context.Context, body []byte) (opa.Result, error) {
	f.calls.Add(1)
	return f.QueryFn(ctx, body)
}

// fakeDecider is a Decider with a function field: what a wrapper wraps.
type fakeDecider struct {
	DecideFn func(ctx context.Context, in *Input) (Decision, error)
	calls    atomic.Int32
}

var _ Decider = (*fakeDecider)(nil)

func (f *fakeDecider) Decide(ctx context.Context, in *Input) (Decision, error) {
	f.calls.Add(1)
	return f.DecideFn(ctx, in)
}

// fakeMetrics records the OPA queries counted.
type fakeMetrics struct {
	mu  sync.Mutex
	opa []string // results
}

var _ Metrics = (*fakeMetrics)(nil)

func (f *fakeMetrics) OPA(result string, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opa = append(f.opa, result)
}

func (f *fakeMetrics) results() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.opa...)
}

// sayhello is the input of an allowed-looking GET /sayhello by alice.
func sayhello() *Input {
	in := &Input{Method: "GET", Path: "/sayhello", Mode: ModeServe, Headers: Headers{Header: http.Header{"Accept": {"*/*"}}}}
	in.SetToken(&authn.Token{Subject: "alice", Scopes: []string{"read_sayhello"}, Claims: json.RawMessage(`{"active":true}`)}, "", false)
	return in
}
