package fleet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/stacktest"
)

var bulk = stacktest.Bulk

// TestHostileClaimReplies: a claim reply of any shape is checked: one that
// is not a claim's is a miss, answered by the IdP, without a panic, a hang
// or a loop.
func TestHostileClaimReplies(t *testing.T) {
	const token = "tok-hostile-0123456789"
	name, _, _ := fleet.Names(fleetKey, "test:", token)
	ended := string(fleet.SealWith(fleetKey, token, name, authn.Answer{Until: time.Now().Add(-time.Minute).UnixNano(),
		Token: &authn.Token{Subject: "mallory", Exp: time.Now().Add(time.Hour).Unix()}}))
	for _, tt := range []struct {
		name, reply string
		maxClaims   int64
	}{
		{"hit without a value", "*1\r\n" + bulk("hit"), 1},
		{"hit with an integer", "*2\r\n" + bulk("hit") + ":5\r\n", 1},
		{"revoked with an integer", "*2\r\n" + bulk("revoked") + ":1\r\n", 1},
		{"revoked without a value", "*1\r\n" + bulk("revoked"), 1},
		{"an empty array", "*0\r\n", 1},
		{"a nested array", "*1\r\n*0\r\n", 1},
		{"an unknown kind", "*1\r\n" + bulk("granted"), 1},
		{"wait with extra values", "*3\r\n" + bulk("wait") + bulk("x") + bulk("y"), 1},
		{"an integer", ":1\r\n", 1},
		{"a bulk string", bulk("hit"), 1},
		{"a nil", "$-1\r\n", 1},
		{"an error", "-ERR no\r\n", 1},
		{"garbage as the answer, never deleted", "*2\r\n" + bulk("hit") + bulk("garbage"), 2},
		{"an ended answer, never deleted", "*2\r\n" + bulk("hit") + bulk(ended), 2},
		{"a wait that never ends", "*1\r\n" + bulk("wait"), 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := stacktest.StartHostileRedis(t, tt.reply, "")
			f := &idp{}
			r := newReplica(t, h.Addr, f, func(s *fleet.Settings) { s.LockTTL = 500 * time.Millisecond })
			start := time.Now()
			tok, how, err := r.cache.Lookup(context.Background(), token)
			if err != nil || tok.Subject != "alice" || how != authn.Miss {
				t.Fatalf("%+v %v %v, want the IdP's answer, a miss", tok, how, err)
			}
			if n := h.Claims(); n > tt.maxClaims || n < 1 {
				t.Errorf("%d claims, want 1 to %d", n, tt.maxClaims)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("answered after %s", d)
			}
		})
	}
}

// TestHostileBudgetReply: a budget reply longer than one emission interval
// is cut to it.
func TestHostileBudgetReply(t *testing.T) {
	h := stacktest.StartHostileRedis(t, "*1\r\n"+bulk("locked"), ":999999999999\r\n")
	f := &idp{}
	r := newReplica(t, h.Addr, f)
	b := r.tier.NewBudget(f, authn.NewRateLimited(f, 1, nil), 10)
	_, err := b.Verify(context.Background(), "t")
	fe := asFault(err)
	if fe == nil || !errors.Is(err, authn.ErrOverBudget) {
		t.Fatalf("%v, want over budget", err)
	}
	if d := time.Until(fe.RetryAfter); d > 100*time.Millisecond {
		t.Errorf("Retry-After in %s, want at most one interval (100ms)", d)
	}
	if n := r.obs.rejections("budget corrupt"); n != 1 {
		t.Errorf("counted %d, want 1", n)
	}
}

// TestEndedAnswerInRedis: an answer over for this replica that Redis keeps
// (PERSIST, or this replica's clock ahead of the writer's) is deleted and
// replaced in a bounded number of calls.
func TestEndedAnswerInRedis(t *testing.T) {
	rs := stacktest.StartRedis(t)
	c := rs.Client()
	ctx := context.Background()
	f := &idp{}
	const token = "tok-persist-0123456789"
	name, _, _ := fleet.Names(fleetKey, "test:", token)
	ended := fleet.SealWith(fleetKey, token, name, authn.Answer{Until: time.Now().Add(-time.Minute).UnixNano(),
		Token: &authn.Token{Subject: "mallory", Exp: time.Now().Add(time.Hour).Unix()}})
	c.Set(ctx, name, ended, 0) // no expiry: PERSIST
	r := newReplica(t, rs.Addr, f)
	if tok, how, err := lookup(t, r, token); err != nil || tok.Subject != "alice" || how != authn.Miss {
		t.Fatalf("%+v %v %v", tok, how, err)
	}
	if n := r.obs.count("claim ok"); n != 2 {
		t.Errorf("%d claims, want 2 (the ended answer, then the lock)", n)
	}
	if v, _ := c.Get(ctx, name).Bytes(); string(v) == string(ended) {
		t.Error("the ended answer is still there")
	}

	// A replica whose clock is an hour ahead finds the others' answers
	// ended: it answers itself, in a few calls.
	const token2 = "tok-skew-0123456789"
	newReplica(t, rs.Addr, f).cache.Lookup(ctx, token2)
	ahead := newReplica(t, rs.Addr, f, func(s *fleet.Settings) {
		s.Now = func() time.Time { return time.Now().Add(time.Hour) }
	})
	if tok, how, err := lookup(t, ahead, token2); err != nil || tok.Subject != "alice" || how != authn.Miss {
		t.Fatalf("clock ahead: %+v %v %v", tok, how, err)
	}
	if n := ahead.obs.count("claim ok"); n > 2 {
		t.Errorf("clock ahead: %d claims, want at most 2", n)
	}
}

// TestAnswerFromClockAhead: an answer shared by a replica whose clock is
// ahead is kept here no longer than Tombstone (CACHE_TTL) on this
// replica's clock, not until the writer's end of its life.
func TestAnswerFromClockAhead(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{answer: func(string) (*authn.Token, error) {
		return &authn.Token{Subject: "alice", Exp: time.Now().Add(3 * time.Hour).Unix()}, nil
	}}
	ahead := newReplica(t, rs.Addr, f, func(s *fleet.Settings) {
		s.Now = func() time.Time { return time.Now().Add(30 * time.Minute) }
	})
	const token = "tok-writer-ahead-0123456789"
	if _, how, err := lookup(t, ahead, token); err != nil || how != authn.Miss {
		t.Fatalf("writer: %v %v", how, err)
	}
	r := newReplica(t, rs.Addr, f)
	tok, how, err := lookup(t, r, token)
	if err != nil || how != authn.SharedHit {
		t.Fatalf("reader: %v %v, want shared_hit", how, err)
	}
	if limit := time.Now().Add(time.Minute); time.Unix(0, tok.CachedUntil).After(limit) {
		t.Errorf("cached until %s, want at most %s (Tombstone from this replica's clock)", time.Unix(0, tok.CachedUntil), limit)
	}
}
