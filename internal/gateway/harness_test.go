package gateway

// The one test harness of the gateway, and one fake per interface the
// gateway consumes (fakeTokens, fakeDecider, fakeQuerier, fakeMetrics).
// Every gateway test builds its gateway with newHarness:
//
//	h := newHarness(t)                                   // the defaults below
//	h := newHarness(t, func(d *Deps) { d.SendToken = true })
//	h := newHarness(t, withDecisionCache(time.Minute, 10))
//	h.answer(deny)                                       // OPA's answer from now on
//	h.policy(func(ctx, in) (opa.Result, error) {...})    // or an answer per input
//	h.tokens.LookupFn = ...                              // any fake's function, any time
//	w := h.get("/sayhello", "Bearer "+goodToken)         // GET on the traffic listener
//	w = h.serve(h.g.Admin(), newRequest("GET", "/verify/x", "Authorization", "Bearer "+goodToken))
//	h.inputs(t), h.queries()                             // what OPA got
//	h.lines(t), h.accessLines(t), h.waitLine(t, msg)     // what was logged
//	h.clock.Add(time.Minute)                             // the time moves only when told
//
// Defaults: Deps.Tokens is h.tokens (goodToken is h.good, active,
// introspected; inactiveToken is not; idpDownToken's IdP is down: see
// defaultLookup; the request it was told of: h.tokens.lastRequest());
// hybrid's INTROSPECT_PATHS: introspectOnPaths(d, another fakeTokens,
// rules...); the policy is the real authz.OPA
// over h.opa (OPA's Data API, answering allow) behind the real
// authz.Guarded with h.opaBreaker, so a test sees the very document the
// gateway sends; /readyz reports that breaker; metrics go to h.metrics;
// identity headers are X-Auth-*; the log is JSON at debug level in h.logs;
// every clock (Deps.Now, the OPA decider's, the decision cache's) is
// h.clock, fixed at the harness's creation. Options run once the
// defaults are in Deps and may change or wrap any of them (d.Decider = a
// fakeDecider to script verdicts instead of OPA's answers).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/jwtauth"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/pkg/opa"
)

// fakeTokens is a Tokens with a function field; the request it is told of
// is kept in last.
type fakeTokens struct {
	LookupFn func(ctx context.Context, token string) (*authn.Token, authn.Lookup, error)
	calls    atomic.Int32
	mu       sync.Mutex
	last     authn.Request
}

var _ Tokens = (*fakeTokens)(nil)

func (f *fakeTokens) Lookup(ctx context.Context, r *authn.Request, token string) (*authn.Token, authn.Lookup, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.last = *r
	f.mu.Unlock()
	return f.LookupFn(ctx, token)
}

// lastRequest is the request the latest Lookup was told of.
func (f *fakeTokens) lastRequest() authn.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// introspectOnPaths puts d.Tokens under hybrid mode's INTROSPECT_PATHS:
// a JWT it validates is introspected anew by introspect on rules.
func introspectOnPaths(d *Deps, introspect Tokens, rules ...pathrule.Rule) {
	d.Tokens = &jwtauth.IntrospectOnPaths{Tokens: d.Tokens, Introspect: introspect, Paths: pathrule.Generous(rules)}
}

// fakeDecider is an authz.Decider with a function field, for a test that
// scripts verdicts rather than OPA's answers.
type fakeDecider struct {
	DecideFn func(ctx context.Context, in *authz.Input) (authz.Decision, error)
	calls    atomic.Int32
}

var _ authz.Decider = (*fakeDecider)(nil)

func (f *fakeDecider) Decide(ctx context.Context, in *authz.Input) (authz.Decision, error) {
	f.calls.Add(1)
	return f.DecideFn(ctx, in)
}

// fakeQuerier is OPA's Data API (authz.Querier, as opa.Client) with a
// function field.
type fakeQuerier struct {
	QueryFn func(ctx context.Context, body []byte) (opa.Result, error)
	calls   atomic.Int32
}

var _ authz.Querier = (*fakeQuerier)(nil)

func (f *fakeQuerier) Query(ctx context.Context, body []byte) (opa.Result, error) {
	f.calls.Add(1)
	return f.QueryFn(ctx, body)
}

// fakeMetrics records what the gateway and the OPA decider report.
type fakeMetrics struct {
	mu        sync.Mutex
	requests  []string // "route method status text"
	decisions []string // outcomes
	lookups   []authn.Lookup
	opa       []string // OPA query results
	revokes   []string // POST /revoke results
}

var (
	_ Metrics       = (*fakeMetrics)(nil)
	_ authz.Metrics = (*fakeMetrics)(nil)
)

func (f *fakeMetrics) Request(route, method string, code int, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, route+" "+method+" "+http.StatusText(code))
}

func (f *fakeMetrics) Decision(outcome string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, outcome)
}

func (f *fakeMetrics) CacheLookup(l authn.Lookup) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, l)
}

func (f *fakeMetrics) IssuerCacheLookup(authn.Lookup, string) {}

func (f *fakeMetrics) RevokeRequest(result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, result)
}

func (f *fakeMetrics) OPA(result string, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opa = append(f.opa, result)
}

// OPA's answers.
var (
	allow     = opa.Result{Defined: true, Value: json.RawMessage("true")}
	deny      = opa.Result{Defined: true, Value: json.RawMessage("false")}
	undefined = opa.Result{}
)

// result is OPA's answer with value (a JSON value) as the rule's result.
func result(value string) opa.Result {
	return opa.Result{Defined: true, Value: json.RawMessage(value)}
}

// Tokens the fake token cache knows (defaultLookup).
const (
	goodToken     = "good-token.eyJzdWIiOiJhbGljZSJ9.c2ln"
	inactiveToken = "inactive-token"
	idpDownToken  = "idp-down-token"
)

// Identity header names, IDENTITY_HEADER_*'s defaults.
var testIdentity = IdentityHeaders{Subject: "X-Auth-Subject", ClientID: "X-Auth-Client-Id", Scopes: "X-Auth-Scopes"}

// clock is a fixed clock a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// syncBuffer is a log sink safe for concurrent writes, which a test can
// wait on (wait).
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	more chan struct{} // a write happened
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{more: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

type harness struct {
	g          *Gateway
	tokens     *fakeTokens
	opa        *fakeQuerier     // OPA's Data API, behind the real decider
	opaBreaker *breaker.Breaker // the decider's breaker: opens after 2 failures, for an hour
	metrics    *fakeMetrics
	clock      *clock // starts at the harness's creation, then moves only when told
	logs       *syncBuffer
	// good is the token cache's entry for goodToken.
	good *authn.Token

	mu   sync.Mutex
	docs [][]byte // the documents OPA got through answer or policy
}

// newHarness builds a gateway over the fakes (see the top of this file);
// opts change Deps before New. The OPA decider logs to, counts in (when
// Deps.Metrics counts OPA queries) and reads the clock of what Deps holds
// once the options ran.
func newHarness(t testing.TB, opts ...func(*Deps)) *harness {
	t.Helper()
	h := &harness{
		tokens:  &fakeTokens{},
		opa:     &fakeQuerier{},
		metrics: &fakeMetrics{},
		clock:   &clock{t: time.Now()},
		logs:    newSyncBuffer(),
	}
	h.good = &authn.Token{Subject: "alice", ClientID: "demo", Scope: "read_sayhello", Scopes: []string{"read_sayhello"},
		Claims:      json.RawMessage(`{"active":true,"sub":"alice","client_id":"demo","scope":"read_sayhello"}`),
		Validation:  authn.ValidationIntrospection,
		CachedUntil: h.clock.Now().Add(time.Hour).UnixNano()}
	h.tokens.LookupFn = h.defaultLookup
	h.answer(allow)
	h.opaBreaker = breaker.New(breaker.Settings{Name: "opa", Failures: 2, OpenTimeout: time.Hour, IsFailure: authn.IsUpstreamFailure})
	decider := &authz.OPA{Client: h.opa, Timeout: 5 * time.Second}
	d := Deps{
		Tokens:   h.tokens,
		Decider:  &authz.Guarded{Next: decider, Breaker: h.opaBreaker},
		Ready:    []ReadyCheck{{Name: "opa", Check: func(context.Context) string { return h.opaBreaker.Health() }, Required: true}},
		Metrics:  h.metrics,
		Log:      slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      h.clock.Now,
		Identity: testIdentity,
	}
	for _, o := range opts {
		o(&d)
	}
	decider.Log, decider.Now = d.Log, d.Now
	if m, ok := d.Metrics.(authz.Metrics); ok {
		decider.Metrics = m
	}
	h.g = New(d)
	return h
}

// defaultLookup is the token cache's default behaviour: goodToken is
// h.good, a hit; idpDownToken's IdP is down (503, Retry-After 7 s);
// any other token is inactive, a miss.
func (h *harness) defaultLookup(_ context.Context, token string) (*authn.Token, authn.Lookup, error) {
	switch token {
	case goodToken:
		return h.good, authn.Hit, nil
	case idpDownToken:
		return nil, authn.Miss, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "authorization server unavailable", RetryAfter: h.clock.Now().Add(7 * time.Second), Err: errors.New("introspect: status 502")}
	}
	return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
}

// withDecisionCache puts the decision cache (DECISION_CACHE_TTL) in front
// of the policy, on the harness's clock.
func withDecisionCache(ttl time.Duration, size int) func(*Deps) {
	return func(d *Deps) {
		c, err := authz.NewCache(d.Decider, size, ttl, d.Now)
		if err != nil {
			panic(err)
		}
		d.Decider = c
	}
}

// answer makes OPA answer r to every query from now on.
func (h *harness) answer(r opa.Result) {
	h.policy(func(context.Context, map[string]any) (opa.Result, error) { return r, nil })
}

// policy makes OPA answer what decide says of each query's input (the
// document's "input" member, decoded) from now on.
func (h *harness) policy(decide func(ctx context.Context, in map[string]any) (opa.Result, error)) {
	h.opa.QueryFn = func(ctx context.Context, body []byte) (opa.Result, error) {
		doc := bytes.Clone(body) // the decider reuses its buffer
		h.mu.Lock()
		h.docs = append(h.docs, doc)
		h.mu.Unlock()
		var in struct{ Input map[string]any }
		if err := json.Unmarshal(doc, &in); err != nil {
			return opa.Result{}, err
		}
		return decide(ctx, in.Input)
	}
}

// queries are the documents OPA got, as sent.
func (h *harness) queries() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.docs...)
}

// inputs are the inputs OPA got, decoded.
func (h *harness) inputs(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, doc := range h.queries() {
		var in struct{ Input map[string]any }
		if err := json.Unmarshal(doc, &in); err != nil {
			t.Fatalf("OPA input is not JSON: %v\n%s", err, doc)
		}
		out = append(out, in.Input)
	}
	return out
}

// newRequest is an httptest request (from 192.0.2.1:1234) with header, name
// and value pairs, added with the names as written (not canonicalised).
func newRequest(method, target string, header ...string) *http.Request {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header[header[i]] = append(req.Header[header[i]], header[i+1])
	}
	return req
}

// serve has handler (h.g.Traffic(), h.g.Admin() or h.g.Metrics()) answer req.
func (h *harness) serve(handler http.Handler, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	return w
}

// get serves GET target on the traffic listener, with authorization as the
// Authorization header unless it is "".
func (h *harness) get(target, authorization string) *httptest.ResponseRecorder {
	req := newRequest(http.MethodGet, target)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return h.serve(h.g.Traffic(), req)
}

// lines are the log lines written to h.logs, decoded.
func (h *harness) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// accessLines are the access-log lines among h.lines.
func (h *harness) accessLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range h.lines(t) {
		if l["msg"] == AccessLogMsg {
			out = append(out, l)
		}
	}
	return out
}

// waitLine returns the first log line whose msg is msg, waiting for it (a
// tunnel is logged when it ends) at most 10 s.
func (h *harness) waitLine(t testing.TB, msg string) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, l := range h.lines(t) {
			if l["msg"] == msg {
				return l
			}
		}
		select {
		case <-h.logs.more:
		case <-deadline:
			t.Fatalf("no %q line in:\n%s", msg, h.logs)
		}
	}
}
