package opa

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
		w.Write([]byte(`{"result":true}`))
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL, RequestHeader: func(ctx context.Context, h http.Header) {
		h.Set("X-Request-Id", ctx.Value(ctxKey{}).(string))
		h.Set("Content-Type", "text/plain") // the client's own header wins
	}}
	ctx := context.WithValue(context.Background(), ctxKey{}, "req-42")
	r, err := c.Query(ctx, []byte(`{"input":{}}`))
	if err != nil || !r.Allowed() {
		t.Fatal(r, err)
	}
	if got.Get("X-Request-Id") != "req-42" || got.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", got)
	}
}
