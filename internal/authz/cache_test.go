package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

func TestDecisionCacheBoundsEntries(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := &authn.Token{Subject: "alice", CachedUntil: now.Add(time.Hour).UnixNano()}
	// pathOf is a path that makes the key (method GET, serve mode) n bytes.
	pathOf := func(n int) string { return "/" + strings.Repeat("a", n-len("GET")-len(ModeServe)-1) }
	rich := func(body int) Decision {
		return Decision{Allowed: true, ID: "dec-1", Headers: http.Header{"X-Tenant": {"acme"}}, Body: []byte(strings.Repeat("b", body))}
	}
	tests := []struct {
		name   string
		method string
		path   string
		d      Decision
		cached bool
	}{
		{"short path", "GET", "/sayhello", Decision{Allowed: true, ID: "dec-1"}, true},
		{"key of exactly 1 KiB", "GET", pathOf(maxDecisionKeyBytes), Decision{Allowed: true}, true},
		{"key one byte over 1 KiB", "GET", pathOf(maxDecisionKeyBytes + 1), Decision{Allowed: true}, false},
		{"long unique path", "GET", "/" + strings.Repeat("x", 64<<10), Decision{Allowed: true}, false},
		{"long method", strings.Repeat("M", 2<<10), "/sayhello", Decision{Allowed: true}, false},
		{"small rich decision", "GET", "/sayhello", rich(100), true},
		{"rich decision over 4 KiB", "GET", "/sayhello", rich(maxDecisionBytes), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &fakeDecider{DecideFn: func(context.Context, *Input) (Decision, error) { return tt.d, nil }}
			c, err := NewCache(next, 10, time.Minute, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			in := &Input{Method: tt.method, Path: tt.path, Mode: ModeServe, Source: tok}
			if _, err := c.Decide(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			if got, want := c.cache.Len(), map[bool]int{true: 1, false: 0}[tt.cached]; got != want {
				t.Fatalf("%d entries after a decision, want %d", got, want)
			}
			d, err := c.Decide(context.Background(), in)
			if err != nil || d.Cached != tt.cached || (d.Cached && (d.Allowed != tt.d.Allowed || d.ID != tt.d.ID)) {
				t.Errorf("again = %+v, %v; want cached %v", d, err, tt.cached)
			}
			if got, want := next.calls.Load(), map[bool]int32{true: 1, false: 2}[tt.cached]; got != want {
				t.Errorf("next asked %d times, want %d", got, want)
			}
		})
	}
}

// TestDecisionCacheLifetime: an entry lasts DECISION_CACHE_TTL and never
// past the token cache entry it was made from; it is keyed on that entry,
// method, path and mode; failures and inputs without a Source are not kept.
func TestDecisionCacheLifetime(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name       string
		tokenEntry time.Duration // the token cache entry's remaining life; 0: none
		later      time.Duration // when the second request comes
		change     func(in *Input)
		err        error
		cached     bool
	}{
		{name: "within the TTL", tokenEntry: time.Hour, later: time.Minute - time.Nanosecond, cached: true},
		{name: "the TTL is over", tokenEntry: time.Hour, later: time.Minute},
		{name: "the token's entry ends first", tokenEntry: 10 * time.Second, later: 10 * time.Second},
		{name: "within the token's entry", tokenEntry: 10 * time.Second, later: 10*time.Second - time.Nanosecond, cached: true},
		{name: "a token never cached", later: time.Second},
		{name: "no Source", tokenEntry: time.Hour, later: time.Second, change: func(in *Input) { in.Source = nil }},
		{name: "another entry of the token", tokenEntry: time.Hour, later: time.Second,
			change: func(in *Input) { s := *in.Source; in.Source = &s }},
		{name: "another method", tokenEntry: time.Hour, later: time.Second, change: func(in *Input) { in.Method = "POST" }},
		{name: "another path", tokenEntry: time.Hour, later: time.Second, change: func(in *Input) { in.Path = "/saysecret" }},
		{name: "another mode", tokenEntry: time.Hour, later: time.Second, change: func(in *Input) { in.Mode = ModeVerify }},
		{name: "the query does not count", tokenEntry: time.Hour, later: time.Second, cached: true,
			change: func(in *Input) { in.Query = map[string][]string{"q": {"1"}} }},
		{name: "an error is not kept", tokenEntry: time.Hour, later: time.Second,
			err: &fault.Error{Kind: fault.Unavailable, Err: errors.New("opa down")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			next := &fakeDecider{DecideFn: func(context.Context, *Input) (Decision, error) {
				return Decision{Allowed: true, ID: "dec-1"}, tt.err
			}}
			c, err := NewCache(next, 10, time.Minute, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			tok := &authn.Token{Subject: "alice"}
			if tt.tokenEntry != 0 {
				tok.CachedUntil = start.Add(tt.tokenEntry).UnixNano()
			}
			in := &Input{Method: "GET", Path: "/sayhello", Mode: ModeServe, Source: tok}
			if _, err := c.Decide(context.Background(), in); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			now = start.Add(tt.later)
			again := *in
			if tt.change != nil {
				tt.change(&again)
			}
			d, _ := c.Decide(context.Background(), &again)
			if d.Cached != tt.cached {
				t.Errorf("cached = %v, want %v", d.Cached, tt.cached)
			}
			if got, want := next.calls.Load(), map[bool]int32{true: 1, false: 2}[tt.cached]; got != want {
				t.Errorf("next asked %d times, want %d", got, want)
			}
		})
	}
}
