package proxy

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/tokenid"
)

type grantOf Grant

func (g grantOf) Grant() Grant { return Grant(g) }

// A watch that a revocation ends while it is being set up arms no timer:
// one would keep the ended watch until the token's exp.
func TestWatchEndedWhileStartingArmsNoTimer(t *testing.T) {
	const raw = "token"
	var p *Proxy
	armed, revoked := 0, false
	p = New(Config{
		Upstream: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time {
			if !revoked { // the revocation lands between add and schedule
				revoked = true
				p.cfg.Streams.Revoked(tokenid.Revocation(raw))
			}
			return time.Unix(1_900_000_000, 0)
		},
		AfterFunc: func(time.Duration, func()) func() bool { armed++; return func() bool { return true } },
	})
	ended := 0
	gr := grantOf{Raw: raw, Token: &authn.Token{Exp: 1_900_003_600},
		Recheck: func(context.Context) (*authn.Token, error) { t.Fatal("re-checked"); return nil, nil }}
	w := p.watch(gr, func() { ended++ })
	if ended != 1 || w.endedBy() != endRevoked {
		t.Fatalf("ended %d times, by %q; want once, revoked", ended, w.endedBy())
	}
	if armed != 0 {
		t.Errorf("%d timers armed for an ended watch", armed)
	}
	w.logged()
	if n := p.cfg.Streams.Len(); n != 0 {
		t.Errorf("%d still registered", n)
	}
}
