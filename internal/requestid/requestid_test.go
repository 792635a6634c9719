package requestid

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, c := range []struct {
		id   string
		want bool
	}{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"abc/def+ghi==", true},
		{"svc:7@host.example", true},
		{strings.Repeat("a", MaxLen), true},
		{"", false},
		{strings.Repeat("a", MaxLen+1), false},
		{"has space", false},
		{"line\nbreak", false},
		{`quote"`, false},
		{"semi;colon", false},
		{"ünïcode", false},
	} {
		if got := Valid(c.id); got != c.want {
			t.Errorf("Valid(%q) = %v, want %v", c.id, got, c.want)
		}
	}
}

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		v := New()
		if len(v) != 1 || len(v[0]) != 32 || !Valid(v[0]) || strings.Trim(v[0], "0123456789abcdef") != "" {
			t.Fatalf("New() = %q: want 32 lower-case hex digits", v)
		}
		if seen[v[0]] {
			t.Fatalf("New() repeated %q", v[0])
		}
		seen[v[0]] = true
	}
}

func TestFromHeader(t *testing.T) {
	for _, c := range []struct {
		name      string
		vals      []string
		wantFresh bool
	}{
		{"absent", nil, true},
		{"well formed", []string{"req-123"}, false},
		{"malformed", []string{"bad id"}, true},
		{"too long", []string{strings.Repeat("x", MaxLen+1)}, true},
		{"two values", []string{"a", "b"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.vals != nil {
				h[Header] = c.vals
			}
			got, fresh := FromHeader(h)
			if fresh != c.wantFresh {
				t.Fatalf("fresh = %v, want %v", fresh, c.wantFresh)
			}
			if !fresh && got[0] != c.vals[0] {
				t.Errorf("kept %q, want %q", got[0], c.vals[0])
			}
			if len(got) != 1 || !Valid(got[0]) {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("id in an empty context")
	}
	h := http.Header{}
	SetHeader(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("header set without an id: %v", h)
	}
	type other struct{}
	ctx := NewContext(context.WithValue(context.Background(), other{}, "v"), []string{"req-1"})
	if id, ok := FromContext(ctx); !ok || id != "req-1" {
		t.Fatalf("FromContext = %q, %v", id, ok)
	}
	if ctx.Value(other{}) != "v" {
		t.Error("parent's values lost")
	}
	SetHeader(ctx, h)
	if h.Get(Header) != "req-1" {
		t.Errorf("header %v", h)
	}
	h.Add(Header, "second") // must not write into the shared value
	if id, _ := FromContext(ctx); id != "req-1" {
		t.Errorf("shared value changed: %q", id)
	}
}

func TestAttach(t *testing.T) {
	h := http.Header{Header: {"client-1"}}
	ctx, vals := Attach(context.Background(), h)
	if id, _ := FromContext(ctx); id != "client-1" || vals[0] != "client-1" {
		t.Errorf("kept %q / %q", id, vals)
	}
	ctx, vals = Attach(context.Background(), http.Header{Header: {"bad id"}})
	if id, _ := FromContext(ctx); id != vals[0] || len(id) != 32 || !Valid(id) {
		t.Errorf("generated %q / %q", id, vals)
	}
	if a := testing.AllocsPerRun(100, func() { Attach(context.Background(), http.Header{}) }); a > 1 {
		t.Errorf("Attach: %v allocations, want 1", a)
	}
}

// BenchmarkAttach is a request without an id of its own, as the gateway
// settles it: one allocation (the context, with the id inside).
func BenchmarkAttach(b *testing.B) {
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		ctx, vals := Attach(context.Background(), h)
		sinkCtx, sinkVals = ctx, vals
	}
}

var (
	sinkCtx  context.Context
	sinkVals []string
)

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		New()
	}
}
