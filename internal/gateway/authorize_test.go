package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/pkg/opa"
)

// TestPolicyWarningsAreRateLimited: answers a broken policy gives for every
// request (undefined, not a boolean, an object without a boolean allowed)
// log one warning per kind per warnEvery, the next one counting those
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
	o := newObserved(t, func(d *Deps) {
		d.Now = func() time.Time { return now }
		d.OPA = &fakeOPA{QueryFn: func(context.Context, []byte) (opa.Result, error) { return current, nil }}
	})
	send := func(kind string, n int) {
		t.Helper()
		current = answers[kind]
		for range n {
			if w := o.do(http.MethodGet, "/sayhello", obsToken, nil); w.Code/100 != 4 {
				t.Fatalf("%s: status %d, want a deny", kind, w.Code)
			}
		}
	}
	// warnings returns the warning lines of msg, as "suppressed" values
	// (0 when absent).
	warnings := func(msg string) []float64 {
		t.Helper()
		var out []float64
		for _, l := range o.lines(t) {
			if l["level"] == "WARN" && l["msg"] == msg {
				s, _ := l["suppressed"].(float64)
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

	now = now.Add(warnEvery - time.Nanosecond) // still within the window
	send(undefinedMsg, 1)
	if got := warnings(undefinedMsg); len(got) != 1 {
		t.Fatalf("undefined: %d lines within %v, want 1", len(got), warnEvery)
	}

	now = now.Add(time.Nanosecond) // the window is over: one line, counting the dropped
	send(undefinedMsg, 2)
	if got := warnings(undefinedMsg); len(got) != 2 || got[1] != n {
		t.Errorf("undefined after %v: suppressed %v, want [0 %d]", warnEvery, got, n)
	}

	o.metrics.mu.Lock()
	defer o.metrics.mu.Unlock()
	if got, want := strings.Count(strings.Join(o.metrics.decisions, " "), "deny"), n+3+3+3+1+2; got != want {
		t.Errorf("%d denies counted, want %d (every request)", got, want)
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
			o := newObserved(t, func(d *Deps) {
				d.OPA = &fakeOPA{QueryFn: func(context.Context, []byte) (opa.Result, error) { return tt.result, tt.err }}
			})
			o.do(http.MethodGet, "/sayhello", obsToken, nil)
			o.metrics.mu.Lock()
			defer o.metrics.mu.Unlock()
			if got := o.metrics.opa; len(got) != 1 || got[0] != tt.want {
				t.Errorf("OPA results %v, want [%s]", got, tt.want)
			}
		})
	}
}
