package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/pkg/opa"
)

// TestPolicyWarningsAreRateLimited: answers a broken policy gives for every
// request (undefined, not a boolean, an object without a boolean allowed)
// log one warning per kind per lograte.Every, the next one counting those
// dropped; every request is still denied and counted.
func TestPolicyWarningsAreRateLimited(t *testing.T) {
	const (
		undefinedMsg  = "opa decision undefined; denying (is OPA_AUTHZ_URL the right rule?)"
		notBooleanMsg = "opa decision is not a boolean; denying"
		noAllowedMsg  = "opa decision object has no boolean allowed (or allow); denying"
		badHeadersMsg = "opa decision: bad headers; denying"
	)
	answers := map[string]opa.Result{
		undefinedMsg:  {},
		notBooleanMsg: {Defined: true, Value: json.RawMessage(`[true]`)},
		noAllowedMsg:  {Defined: true, Value: json.RawMessage(`{"http_status":404}`)},
		badHeadersMsg: {Defined: true, Value: json.RawMessage(`{"allowed":true,"headers":{"X A":"a"}}`)},
	}
	now := time.Unix(1_700_000_000, 0)
	var current opa.Result
	var logs bytes.Buffer
	m := &fakeMetrics{}
	o := &OPA{
		Client:  &fakeQuerier{QueryFn: func(context.Context, []byte) (opa.Result, error) { return current, nil }},
		Log:     slog.New(slog.NewJSONHandler(&logs, nil)),
		Metrics: m,
		Now:     func() time.Time { return now },
	}
	send := func(kind string, n int) {
		t.Helper()
		current = answers[kind]
		for range n {
			if d, err := o.Decide(context.Background(), sayhello()); err != nil || d.Allowed {
				t.Fatalf("%s: %+v, %v; want a deny", kind, d, err)
			}
		}
	}
	// warnings returns the warning lines of msg, as "suppressed" values
	// (0 when absent).
	warnings := func(msg string) []float64 {
		t.Helper()
		var out []float64
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var line map[string]any
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("log line is not JSON: %q", l)
			}
			if line["level"] == "WARN" && line["msg"] == msg {
				s, _ := line["suppressed"].(float64)
				out = append(out, s)
			}
		}
		return out
	}

	const n = 50
	send(undefinedMsg, n)
	send(notBooleanMsg, 3)
	send(noAllowedMsg, 3)
	send(badHeadersMsg, 3)
	for msg, want := range map[string]int{undefinedMsg: 1, notBooleanMsg: 1, noAllowedMsg: 1, badHeadersMsg: 1} {
		if got := warnings(msg); len(got) != want || got[0] != 0 {
			t.Errorf("%q: %d lines (suppressed %v) for its first requests, want %d without suppressed", msg, len(got), got, want)
		}
	}

	now = now.Add(lograte.Every - time.Nanosecond) // still within the window
	send(undefinedMsg, 1)
	if got := warnings(undefinedMsg); len(got) != 1 {
		t.Fatalf("undefined: %d lines within %v, want 1", len(got), lograte.Every)
	}

	now = now.Add(time.Nanosecond) // the window is over: one line, counting the dropped
	send(undefinedMsg, 2)
	if got := warnings(undefinedMsg); len(got) != 2 || got[1] != n {
		t.Errorf("undefined after %v: suppressed %v, want [0 %d]", lograte.Every, got, n)
	}

	results := m.results()
	if got, want := len(results), n+3+3+3+1+2; got != want {
		t.Errorf("%d queries counted, want %d (every request)", got, want)
	}
	for _, r := range results {
		if r != "deny" && r != "undefined" {
			t.Errorf("a query counted as %q, want deny or undefined", r)
		}
	}
}

// TestOPAResultCounted: authgate_opa_requests_total counts each query that
// reached OPA by the verdict drawn from it; an object decision by its
// allowed (or allow) member, read exactly, and a deny when unusable.
func TestOPAResultCounted(t *testing.T) {
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
		{"object allowed with unusable headers", defined(`{"allowed":true,"headers":{"X A":"a"}}`), nil, "deny"},
		{"number", defined(`1`), nil, "deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &fakeMetrics{}
			o := &OPA{
				Client:  &fakeQuerier{QueryFn: func(context.Context, []byte) (opa.Result, error) { return tt.result, tt.err }},
				Log:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
				Metrics: m,
			}
			o.Decide(context.Background(), sayhello())
			if got := m.results(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("OPA results %v, want [%s]", got, tt.want)
			}
		})
	}
}

// TestOPADecide: what OPA is sent and what its failures become.
func TestOPADecide(t *testing.T) {
	t.Run("the document, within OPA_TIMEOUT", func(t *testing.T) {
		var got []byte
		q := &fakeQuerier{QueryFn: func(ctx context.Context, body []byte) (opa.Result, error) {
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Second {
				t.Errorf("deadline %v, %v; want within OPA_TIMEOUT", dl, ok)
			}
			got = bytes.Clone(body)
			return opa.Result{Defined: true, Value: json.RawMessage("true"), DecisionID: "d1"}, nil
		}}
		in := sayhello()
		d, err := (&OPA{Client: q, Timeout: time.Second}).Decide(context.Background(), in)
		if err != nil || !d.Allowed || d.ID != "d1" || d.Cached {
			t.Fatalf("%+v, %v", d, err)
		}
		want, _ := in.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Errorf("OPA got %s, want %s", got, want)
		}
	})
	t.Run("no timeout: none beyond the caller's", func(t *testing.T) {
		q := &fakeQuerier{QueryFn: func(ctx context.Context, _ []byte) (opa.Result, error) {
			if _, ok := ctx.Deadline(); ok {
				t.Error("a deadline without OPA_TIMEOUT")
			}
			return opa.Result{}, nil
		}}
		(&OPA{Client: q, Log: slog.New(slog.DiscardHandler)}).Decide(context.Background(), sayhello())
	})
	t.Run("a failed query is Unavailable", func(t *testing.T) {
		cause := &opa.Error{StatusCode: 500, Code: "internal_error"}
		q := &fakeQuerier{QueryFn: func(context.Context, []byte) (opa.Result, error) { return opa.Result{}, cause }}
		_, err := (&OPA{Client: q}).Decide(context.Background(), sayhello())
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || fe.Code != "temporarily_unavailable" || !errors.Is(err, cause) {
			t.Errorf("err = %v, want Unavailable wrapping the query's error", err)
		}
	})
	t.Run("headers past the bounds: OPA not asked", func(t *testing.T) {
		q := &fakeQuerier{QueryFn: func(context.Context, []byte) (opa.Result, error) { return opa.Result{}, nil }}
		in := sayhello()
		for i := range MaxHeaderFields + 1 {
			in.Headers.Header.Set("X-Pad-"+strings.Repeat("a", i), "1")
		}
		if _, err := (&OPA{Client: q}).Decide(context.Background(), in); err != ErrHeadersTooLarge {
			t.Errorf("err = %v, want ErrHeadersTooLarge", err)
		}
		if q.calls.Load() != 0 {
			t.Error("OPA asked")
		}
	})
}

// TestGuarded: only Unavailable errors count against the breaker; once it
// is open, Decide fails at once without asking its Next.
func TestGuarded(t *testing.T) {
	var verdict error
	next := &fakeDecider{DecideFn: func(context.Context, *Input) (Decision, error) { return Decision{ID: "d"}, verdict }}
	b := breaker.New(breaker.Settings{Name: "opa", Failures: 2, OpenTimeout: time.Hour, IsFailure: authn.IsUpstreamFailure})
	g := &Guarded{Next: next, Breaker: b}
	decide := func() error {
		_, err := g.Decide(context.Background(), sayhello())
		return err
	}
	for range 3 {
		verdict = nil // a deny is a Decision, not an error
		decide()
		verdict = ErrHeadersTooLarge
		decide()
	}
	if b.State() != breaker.Closed {
		t.Fatalf("breaker %v after denies and bad requests, want closed", b.State())
	}
	verdict = &fault.Error{Kind: fault.Unavailable, Err: errors.New("opa down")}
	decide()
	decide()
	if b.State() != breaker.Open {
		t.Fatalf("breaker %v after 2 Unavailable errors, want open", b.State())
	}
	calls := next.calls.Load()
	err := decide()
	if !fault.Is(err, fault.Unavailable) || !errors.Is(err, breaker.ErrOpen) {
		t.Errorf("err = %v, want Unavailable: breaker open", err)
	}
	if next.calls.Load() != calls {
		t.Error("the open breaker asked its Next")
	}
}
