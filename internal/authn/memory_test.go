package authn

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/authgate/authgate/pkg/introspect"
)

// oktaAnswer is an introspection answer shaped like Okta's for a custom
// authorization server's access token (about 450 bytes).
func oktaAnswer(i int, exp int64) []byte {
	return fmt.Appendf(nil, `{"active":true,"scope":"openid profile read_sayhello","username":"jane.doe%06d@example.com",`+
		`"exp":%d,"iat":%d,"sub":"jane.doe%06d@example.com","aud":"api://default",`+
		`"iss":"https://dev-123456.okta.com/oauth2/default","jti":"AT.qQ3vdbQ-KkRtb3mBQZyhr_vNrKq1V0FHp1dRL4wd%06d",`+
		`"token_type":"Bearer","client_id":"0oa1b2c3d4e5f6g7h8i9","uid":"00u1a2b3c4d5e6f7g8h9%06d"}`,
		i, exp, exp-3600, i, i, i)
}

type parsedIntrospector struct{ exp int64 }

func (p parsedIntrospector) Introspect(_ context.Context, token string) (*introspect.Response, error) {
	var i int
	fmt.Sscanf(token, "tok%d", &i)
	return introspect.Parse(oktaAnswer(i, p.exp))
}

// BenchmarkCacheMemory reports the heap held per cached token (bytes/token),
// library overhead included, with realistic Okta answers: the target is at
// most 1 KiB per token (100,000 entries <= 100 MiB).
func BenchmarkCacheMemory(b *testing.B) {
	const n = 20_000
	exp := time.Now().Add(time.Hour).Unix()
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := NewCache(&Introspection{Client: parsedIntrospector{exp}}, CacheSettings{
			Size: n, TTL: 5 * time.Minute, NegativeTTL: 30 * time.Second, Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := c.Verify(context.Background(), fmt.Sprintf("tok%d", i)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if c.Len() != n {
			b.Fatalf("%d entries, want %d", c.Len(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/token")
		runtime.KeepAlive(c)
	}
}
