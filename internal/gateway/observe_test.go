package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/requestid"
	"github.com/authgate/authgate/pkg/opa"
)

// fakeOPA is a Querier with a function field.
type fakeOPA struct {
	QueryFn func(ctx context.Context, body []byte) (opa.Result, error)
}

func (f *fakeOPA) Query(ctx context.Context, body []byte) (opa.Result, error) {
	return f.QueryFn(ctx, body)
}

var _ Querier = (*fakeOPA)(nil)

// fakeMetrics records what the gateway reports.
type fakeMetrics struct {
	mu        sync.Mutex
	requests  []string // "route method code"
	decisions []string
	lookups   []authn.Lookup
	opa       []string // results
}

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

func (f *fakeMetrics) OPA(result string, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opa = append(f.opa, result)
}

var _ Metrics = (*fakeMetrics)(nil)

const obsToken = "good-token-0123456789"

// observed is a gateway over fakes: obsToken is active with scope
// read_sayhello and OPA allows exactly that scope; other tokens are
// inactive. It remembers what the upstreams saw.
type observed struct {
	gw      *Gateway
	logs    *bytes.Buffer
	metrics *fakeMetrics
	mu      sync.Mutex
	idpIDs  []string // request ids in the lookup contexts
	opaIDs  []string // request ids in the OPA contexts
	inputs  []string // OPA request bodies
}

func newObserved(t *testing.T, mod func(*Deps)) *observed {
	t.Helper()
	o := &observed{logs: &bytes.Buffer{}, metrics: &fakeMetrics{}}
	tok := &authn.Token{Subject: "alice", ClientID: "demo", Scope: "read_sayhello", Scopes: []string{"read_sayhello"},
		Claims: json.RawMessage(`{"active":true,"scope":"read_sayhello","client_id":"demo","sub":"alice"}`), Validation: authn.ValidationIntrospection}
	d := Deps{
		Tokens: &fakeTokens{LookupFn: func(ctx context.Context, token string) (*authn.Token, authn.Lookup, error) {
			id, _ := requestid.FromContext(ctx)
			o.mu.Lock()
			o.idpIDs = append(o.idpIDs, id)
			o.mu.Unlock()
			if token != obsToken {
				return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
			}
			return tok, authn.Hit, nil
		}},
		OPA: &fakeOPA{QueryFn: func(ctx context.Context, body []byte) (opa.Result, error) {
			id, _ := requestid.FromContext(ctx)
			o.mu.Lock()
			o.opaIDs = append(o.opaIDs, id)
			o.inputs = append(o.inputs, string(body))
			o.mu.Unlock()
			var in struct {
				Input struct{ Path string }
			}
			json.Unmarshal(body, &in)
			return opa.Result{Defined: true, Value: json.RawMessage(boolJSON(in.Input.Path == "/sayhello")), DecisionID: "dec-1"}, nil
		}},
		OPABreaker: breaker.New(breaker.Settings{Name: "opa", Failures: 5, OpenTimeout: time.Second}),
		IdPBreaker: breaker.New(breaker.Settings{Name: "idp", Failures: 5, OpenTimeout: time.Second}),
		OPATimeout: time.Second,
		Log:        slog.New(slog.NewJSONHandler(o.logs, nil)),
		Metrics:    o.metrics,
	}
	if mod != nil {
		mod(&d)
	}
	o.gw = New(d)
	return o
}

func boolJSON(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (o *observed) do(method, path, token string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = "192.0.2.7:40000"
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	o.gw.Traffic().ServeHTTP(w, req)
	return w
}

// lines parses every log line.
func (o *observed) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(o.logs.String()), "\n") {
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

func TestRequestID(t *testing.T) {
	cases := []struct {
		name string
		sent []string
		keep bool
	}{
		{"generated when absent", nil, false},
		{"client's kept", []string{"3f2a-client-id"}, true},
		{"malformed replaced", []string{"evil\"id with spaces"}, false},
		{"too long replaced", []string{strings.Repeat("a", requestid.MaxLen+1)}, false},
		{"two replaced", []string{"a", "b"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := newObserved(t, nil)
			h := http.Header{}
			if c.sent != nil {
				h[requestid.Header] = c.sent
			}
			w := o.do(http.MethodGet, "/sayhello", obsToken, h)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			id := w.Header().Get(requestid.Header)
			switch {
			case c.keep && id != c.sent[0]:
				t.Fatalf("response id %q, want the client's %q", id, c.sent[0])
			case !c.keep && (len(id) != 32 || (c.sent != nil && id == c.sent[0])):
				t.Fatalf("response id %q, want a fresh 32-hex id", id)
			}
			if len(o.idpIDs) != 1 || o.idpIDs[0] != id {
				t.Errorf("token lookup saw ids %q, want %q", o.idpIDs, id)
			}
			if len(o.opaIDs) != 1 || o.opaIDs[0] != id {
				t.Errorf("OPA saw ids %q, want %q", o.opaIDs, id)
			}
			if !strings.Contains(o.inputs[0], `"x-request-id":"`+id+`"`) {
				t.Errorf("OPA input headers lack the id: %s", o.inputs[0])
			}
			if l := o.lines(t); len(l) != 1 || l[0]["request_id"] != id {
				t.Errorf("access log: %v", l)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	o := newObserved(t, nil)
	o.do(http.MethodGet, "/sayhello", obsToken, nil)
	o.do(http.MethodGet, "/saysecret", obsToken, nil)
	o.do(http.MethodGet, "/sayhello", "", nil)
	o.do(http.MethodGet, "/sayhello", "not-active-token", nil)
	o.do(http.MethodGet, "/no/such/path", obsToken, nil)

	lines := o.lines(t)
	if len(lines) != 5 {
		t.Fatalf("%d lines for 5 requests:\n%s", len(lines), o.logs)
	}
	want := []map[string]any{
		{"msg": "request", "level": "INFO", "method": "GET", "route": "/sayhello", "status": 200.0, "outcome": "allow",
			"subject": "alice", "client_id": "demo", "cache": "hit", "decision_id": "dec-1", "remote_addr": "192.0.2.7:40000",
			"validation": "introspection"},
		{"route": "/saysecret", "status": 403.0, "outcome": "deny", "decision_id": "dec-1"},
		{"route": "/sayhello", "status": 401.0, "outcome": "no_token", "reason": "no bearer token"},
		{"route": "/sayhello", "status": 401.0, "outcome": "invalid_token", "cache": "miss"},
		{"route": "unmatched", "status": 404.0},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%v", i, k, lines[i][k], v, lines[i])
			}
		}
	}
	for _, k := range []string{"time", "request_id", "duration", "bytes", "introspect_duration", "opa_duration"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("allow line lacks %s: %v", k, lines[0])
		}
	}
	if r := lines[1]["reason"]; r != "policy denied" {
		t.Errorf("deny reason %q", r)
	}
	if r := lines[3]["reason"]; r != "token is not active" {
		t.Errorf("inactive reason %q", r)
	}
	for _, k := range []string{"outcome", "subject", "cache", "opa_duration"} {
		if _, ok := lines[4][k]; ok {
			t.Errorf("unmatched route line has %s: %v", k, lines[4])
		}
	}
	if strings.Contains(o.logs.String(), obsToken) || strings.Contains(o.logs.String(), "not-active-token") {
		t.Errorf("a token appears in the log:\n%s", o.logs)
	}
}

func TestAccessLogLevel(t *testing.T) {
	o := newObserved(t, func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	if w := o.do(http.MethodGet, "/sayhello", obsToken, nil); w.Code != 200 || w.Header().Get(requestid.Header) == "" {
		t.Fatalf("status %d, id %q", w.Code, w.Header().Get(requestid.Header))
	}
	if len(o.metrics.requests) != 1 {
		t.Error("metrics depend on the log level")
	}
}

func TestMetricsReported(t *testing.T) {
	o := newObserved(t, nil)
	o.do(http.MethodGet, "/sayhello", obsToken, nil)
	o.do(http.MethodGet, "/saysecret", obsToken, nil)
	o.do(http.MethodGet, "/sayhello", "", nil)
	o.do(http.MethodGet, "/sayhello/../../etc", obsToken, nil)
	o.do(http.MethodPost, "/sayhello", obsToken, nil)

	m := o.metrics
	wantReq := []string{"/sayhello GET OK", "/saysecret GET Forbidden", "/sayhello GET Unauthorized",
		" GET Not Found", "/sayhello POST Method Not Allowed"}
	if strings.Join(m.requests, "|") != strings.Join(wantReq, "|") {
		t.Errorf("requests %q, want %q", m.requests, wantReq)
	}
	if got := strings.Join(m.decisions, " "); got != "allow deny no_token" {
		t.Errorf("decisions %q", got)
	}
	if len(m.lookups) != 2 || m.lookups[0] != authn.Hit {
		t.Errorf("lookups %v", m.lookups)
	}
}

func TestAdminEndpoints(t *testing.T) {
	metricsBody := "authgate_up 1\n"
	get := func(gw *Gateway, path string) int {
		w := httptest.NewRecorder()
		gw.Admin().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	plain := newObserved(t, nil).gw
	if c := get(plain, "/debug/pprof/"); c != 404 {
		t.Errorf("pprof without PPROF=true: %d", c)
	}
	if c := get(plain, "/metrics"); c != 404 {
		t.Errorf("/metrics without a handler: %d", c)
	}
	full := newObserved(t, func(d *Deps) {
		d.PProf = true
		d.MetricsHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(metricsBody)) })
	}).gw
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1", "/metrics"} {
		if c := get(full, p); c != 200 {
			t.Errorf("%s: %d", p, c)
		}
	}
	w := httptest.NewRecorder()
	full.Traffic().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != 404 {
		t.Errorf("/metrics on the traffic listener: %d", w.Code)
	}
}

func TestFailureOutcome(t *testing.T) {
	for _, c := range []struct {
		err             error
		outcome, reason string
	}{
		{errNoToken, "no_token", "no bearer token"},
		{&fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "empty bearer token"}, "bad_request", "empty bearer token"},
		{&fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token expired"}, "invalid_token", "token expired"},
		{&fault.Error{Kind: fault.Forbidden, Code: "access_denied", Description: "denied by policy", Err: denyReason("policy decision undefined")},
			"deny", "policy decision undefined"},
		{&fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "opa unavailable", Err: fmt.Errorf("opa: %w", breaker.ErrOpen)},
			"unavailable", "opa unavailable: opa: breaker open"},
		{&fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "authorization server rate limit reached"},
			"unavailable", "authorization server rate limit reached"},
		{errors.New("boom"), "error", "boom"},
	} {
		o, r := failureOutcome(c.err)
		if o != c.outcome || r != c.reason {
			t.Errorf("%v: %q %q, want %q %q", c.err, o, r, c.outcome, c.reason)
		}
	}
}
