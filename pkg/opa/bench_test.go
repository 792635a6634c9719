package opa_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/pkg/opa"
)

// BenchmarkQueryRealOPA is one decision against the real OPA binary with
// opa-policies/, over a keep-alive connection: the floor under authgate's
// per-request cost.
func BenchmarkQueryRealOPA(b *testing.B) {
	srv := opatest.Start(b, opatest.RepoRoot(b)+"/opa-policies")
	c := &opa.Client{URL: srv.URL + "/v1/data/demoapi/authz/allow", HTTPClient: &http.Client{}}
	body := []byte(`{"input":{"method":"GET","path":"/sayhello","api":"/sayhello","query":{},"headers":{"user-agent":"hey/0.0.1"},` +
		`"token":{"active":true,"scope":"read_sayhello","client_id":"demo","sub":"demo","exp":4102444800},"scopes":["read_sayhello"],"subject":"demo"}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, err := c.Query(ctx, body)
		if err != nil || !r.Allowed() {
			b.Fatalf("%+v %v", r, err)
		}
	}
}
