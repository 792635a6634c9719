package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
)

func TestDecisionCacheBoundsEntries(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := &authn.Token{Subject: "alice", CachedUntil: now.Add(time.Hour).UnixNano()}
	// pathOf is a path that makes the key (method GET, serve mode) n bytes.
	pathOf := func(n int) string { return "/" + strings.Repeat("a", n-len("GET")-len(modeServe)-1) }
	rich := func(body int) decision {
		return decision{allowed: true, id: "dec-1", rich: &richDecision{
			headers: http.Header{"X-Tenant": {"acme"}}, body: []byte(strings.Repeat("b", body))}}
	}
	tests := []struct {
		name   string
		method string
		path   string
		d      decision
		cached bool
	}{
		{"short path", "GET", "/sayhello", decision{allowed: true, id: "dec-1"}, true},
		{"key of exactly 1 KiB", "GET", pathOf(maxDecisionKeyBytes), decision{allowed: true}, true},
		{"key one byte over 1 KiB", "GET", pathOf(maxDecisionKeyBytes + 1), decision{allowed: true}, false},
		{"long unique path", "GET", "/" + strings.Repeat("x", 64<<10), decision{allowed: true}, false},
		{"long method", strings.Repeat("M", 2<<10), "/sayhello", decision{allowed: true}, false},
		{"small rich decision", "GET", "/sayhello", rich(100), true},
		{"rich decision over 4 KiB", "GET", "/sayhello", rich(maxDecisionBytes), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newDecisionCache(10, time.Minute, func() time.Time { return now })
			f := &facts{method: tt.method, path: tt.path, mode: modeServe}
			c.put(tok, f, tt.d)
			if got, want := c.cache.Len(), map[bool]int{true: 1, false: 0}[tt.cached]; got != want {
				t.Fatalf("%d entries after put, want %d", got, want)
			}
			d, ok := c.get(tok, f)
			if ok != tt.cached || (ok && (d.allowed != tt.d.allowed || d.id != tt.d.id)) {
				t.Errorf("get = %+v, %v; want cached %v", d, ok, tt.cached)
			}
		})
	}
}

// TestAccessLogMarksCachedDecisions: a decision served from the decision
// cache keeps OPA's decision_id, marked decision_cached, and has no
// opa_duration; only the first request asks OPA.
func TestAccessLogMarksCachedDecisions(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := &authn.Token{Subject: "alice", ClientID: "demo", Scope: "read_sayhello", Scopes: []string{"read_sayhello"},
		Claims:      json.RawMessage(`{"active":true,"scope":"read_sayhello","client_id":"demo","sub":"alice"}`),
		CachedUntil: now.Add(time.Hour).UnixNano()}
	o := newObserved(t, func(d *Deps) {
		d.Now = func() time.Time { return now }
		d.DecisionCacheTTL, d.DecisionCacheSize = time.Minute, 10
		d.Tokens = &fakeTokens{LookupFn: func(context.Context, string) (*authn.Token, authn.Lookup, error) {
			return tok, authn.Hit, nil
		}}
	})
	for range 2 {
		if w := o.do(http.MethodGet, "/sayhello", obsToken, nil); w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if len(o.inputs) != 1 {
		t.Fatalf("OPA asked %d times, want 1 (then cached)", len(o.inputs))
	}
	lines := o.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d lines for 2 requests:\n%s", len(lines), o.logs)
	}
	fresh, cached := lines[0], lines[1]
	if fresh["decision_id"] != "dec-1" || fresh["decision_cached"] != nil || fresh["opa_duration"] == nil {
		t.Errorf("fresh decision: %v; want decision_id dec-1, opa_duration, no decision_cached", fresh)
	}
	if cached["decision_id"] != "dec-1" || cached["decision_cached"] != true || cached["opa_duration"] != nil {
		t.Errorf("cached decision: %v; want decision_id dec-1, decision_cached true, no opa_duration", cached)
	}
}
