package introspect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

type ctxKey struct{}

func TestRequestHeader(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Write([]byte(`{"active":false}`))
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL, ClientID: "id", ClientSecret: "secret",
		RequestHeader: func(ctx context.Context, h http.Header) {
			h.Set("X-Request-Id", ctx.Value(ctxKey{}).(string))
			h.Set("Authorization", "Bearer overridden") // the client's own headers win
		}}
	ctx := context.WithValue(context.Background(), ctxKey{}, "req-42")
	if _, err := c.Introspect(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Request-Id") != "req-42" {
		t.Errorf("X-Request-Id %q", got.Get("X-Request-Id"))
	}
	if u, p, ok := (&http.Request{Header: got}).BasicAuth(); !ok || u != "id" || p != "secret" {
		t.Errorf("Authorization replaced by the hook: %q", got.Get("Authorization"))
	}
}
