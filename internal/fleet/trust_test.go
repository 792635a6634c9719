package fleet_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/stacktest"
	"github.com/authgate/authgate/internal/tokenid"
)

// TestForgedAnswer: whoever writes to Redis without the fleet key cannot
// let a token in: an answer sealed the first version's way (under a key
// derived from the token alone), or under another fleet key, is not
// believed; the token is introspected.
func TestForgedAnswer(t *testing.T) {
	rs := stacktest.StartRedis(t)
	c := rs.Client()
	ctx := context.Background()
	admin := map[string]any{"u": time.Now().Add(time.Hour).UnixNano(), "a": true, "sub": "admin",
		"scope": "admin", "scopes": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix(), "v": "introspection"}
	for i, forge := range []struct {
		name   string
		forged func(token string) (key, value string)
	}{
		{"the first version's seal, under its key name", func(token string) (string, string) {
			sum := sha256.Sum256([]byte(token))
			name := "test:{" + hex.EncodeToString(sum[:]) + "}:answer"
			return name, string(fleet.SealV1(token, name, admin))
		}},
		{"the first version's seal, under the key name", func(token string) (string, string) {
			name, _, _ := fleet.Names(fleetKey, "test:", token)
			return name, string(fleet.SealV1(token, name, admin))
		}},
		{"sealed under another fleet key", func(token string) (string, string) {
			name, _, _ := fleet.Names(fleetKey, "test:", token)
			return name, string(fleet.SealWith(fleetKey2, token, name, authn.Answer{Until: time.Now().Add(time.Hour).UnixNano(),
				Token: &authn.Token{Subject: "admin", Scope: "admin", Scopes: []string{"admin"}, Exp: time.Now().Add(time.Hour).Unix()}}))
		}},
	} {
		t.Run(forge.name, func(t *testing.T) {
			token := "made-up-token-" + strings.Repeat("z", 20+i)
			k, v := forge.forged(token)
			if err := c.Set(ctx, k, v, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			f := &idp{}
			r := newReplica(t, rs.Addr, f)
			tok, how, err := lookup(t, r, token)
			if err != nil || how != authn.Miss || tok.Subject != "alice" || f.calls.Load() != 1 {
				t.Fatalf("forged answer: %+v %v %v (%d introspections), want the IdP's answer, a miss", tok, how, err, f.calls.Load())
			}
		})
	}
}

// TestForgedTombstone: a tombstone without the fleet key's MAC keeps no
// token out; one with it does.
func TestForgedTombstone(t *testing.T) {
	rs := stacktest.StartRedis(t)
	c := rs.Client()
	ctx := context.Background()
	const token = "tok-tombstone-0123456789"
	_, tomb, _ := fleet.Names(fleetKey, "test:", token)
	f := &idp{}
	for _, v := range []string{"1", fleet.Tombstone(fleetKey2, tomb, time.Now().Add(time.Hour).UnixNano())} {
		c.Set(ctx, tomb, v, time.Hour)
		r := newReplica(t, rs.Addr, f)
		if tok, _, err := lookup(t, r, token); err != nil || tok.Subject != "alice" {
			t.Fatalf("forged tombstone %q: %+v %v, want the IdP's answer", v, tok, err)
		}
		if n := r.obs.rejections("tombstone forged"); n != 1 {
			t.Errorf("tombstone forged counted %d times, want 1", n)
		}
	}
	c.Set(ctx, tomb, fleet.Tombstone(fleetKey, tomb, time.Now().Add(time.Hour).UnixNano()), time.Hour)
	if _, _, err := lookup(t, newReplica(t, rs.Addr, f), token); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a true tombstone: %v, want revoked", err)
	}
}

// TestMessages: a pub/sub message is acted on only when it proves a fleet
// key and was sent lately; any other is dropped and counted.
func TestMessages(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	a := newReplica(t, rs.Addr, f)
	const token = "tok-message-0123456789"
	if _, _, err := lookup(t, a, token); err != nil {
		t.Fatal(err)
	}
	rev := tokenid.Revocation(token)
	c := rs.Client()
	ctx := context.Background()
	other := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	hold := binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(time.Minute).UnixNano()))
	for _, m := range []struct {
		name, payload, reason string
	}{
		{"the first version's revocation", "r " + hex.EncodeToString(rev[:]) + " someone", "forged"},
		{"the first version's hold", "h " + hex.EncodeToString(hold) + " someone", "forged"},
		{"garbage", "\x02\x00\x05hello", "forged"},
		{"another fleet key", fleet.Message("test:events", 'r', time.Now().UnixNano(), other, rev[:], fleetKey2), "forged"},
		{"a hold under another fleet key", fleet.Message("test:events", 'h', time.Now().UnixNano(), other, hold, fleetKey2), "forged"},
		{"another channel's", fleet.Message("other:events", 'r', time.Now().UnixNano(), other, rev[:], fleetKey), "forged"},
		{"sent two minutes ago", fleet.Message("test:events", 'r', time.Now().Add(-2*time.Minute).UnixNano(), other, rev[:], fleetKey), "stale"},
		{"sent two minutes ahead", fleet.Message("test:events", 'h', time.Now().Add(2*time.Minute).UnixNano(), other, hold, fleetKey), "stale"},
	} {
		before := a.obs.rejections("message " + m.reason)
		if err := c.Publish(ctx, "test:events", m.payload).Err(); err != nil {
			t.Fatal(err)
		}
		stacktest.Eventually(t, time.Second, m.name+": dropped and counted", func() bool {
			return a.obs.rejections("message "+m.reason) == before+1
		})
	}
	if _, how, err := lookup(t, a, token); err != nil || how != authn.Hit {
		t.Errorf("after forged revocations: %v %v, want a hit", how, err)
	}
	if n := a.obs.revocations("pubsub"); n != 0 || a.holds.Load() != 0 {
		t.Errorf("%d revocations, %d holds acted on, want none", n, a.holds.Load())
	}
	// The real thing is acted on.
	c.Publish(ctx, "test:events", fleet.Message("test:events", 'h', time.Now().UnixNano(), other, hold, fleetKey))
	c.Publish(ctx, "test:events", fleet.Message("test:events", 'r', time.Now().UnixNano(), other, rev[:], fleetKey))
	stacktest.Eventually(t, time.Second, "a true revocation revokes", func() bool {
		_, _, err := lookup(t, a, token)
		return err != nil
	})
	if a.holds.Load() != 1 {
		t.Errorf("%d holds, want 1", a.holds.Load())
	}
}

// TestRotation: while FLEET_KEY_PREVIOUS is set, a replica reads what the
// previous key sealed or signed, revocations and holds are sent under both
// keys (a replica that knows either hears them), tombstones are written
// under both keys' names, and a value that does not open is left alone.
func TestRotation(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	old := newReplica(t, rs.Addr, f)                               // FLEET_KEY=old
	both := newReplica(t, rs.Addr, f, rotate(fleetKey2, fleetKey)) // FLEET_KEY=new FLEET_KEY_PREVIOUS=old
	fresh := newReplica(t, rs.Addr, f, rotate(fleetKey2, ""))      // FLEET_KEY=new
	tokens := []string{"tok-rot-a-0123456789", "tok-rot-b-0123456789"}
	for _, tok := range tokens {
		// Introspected by the old key's replica: the rotating replica reads
		// its answer (the previous key's) and shares it under the new key,
		// where the new-key-only replica finds it.
		calls := f.calls.Load()
		for i, r := range []*replica{old, both, fresh} {
			_, how, err := lookup(t, r, tok)
			if err != nil {
				t.Fatal(err)
			}
			if want := []authn.Lookup{authn.Miss, authn.SharedHit, authn.SharedHit}[i]; how != want {
				t.Errorf("replica %d: %v, want %v", i, how, want)
			}
		}
		if n := f.calls.Load() - calls; n != 1 {
			t.Errorf("%d introspections, want 1", n)
		}
	}
	// Revoked by the rotating replica: every replica hears it.
	if err := both.tier.Revoke(context.Background(), tokenid.Revocation(tokens[0])); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{old, fresh} {
		stacktest.Eventually(t, time.Second, "the revocation reaches either key's replica", func() bool {
			_, _, err := lookup(t, r, tokens[0])
			return err != nil && r.obs.revocations("pubsub") == 1
		})
	}
	// A replica starting with either key sees either tombstone.
	for _, edit := range []func(*fleet.Settings){rotate(fleetKey, ""), rotate(fleetKey2, "")} {
		if _, _, err := lookup(t, newReplica(t, rs.Addr, f, edit), tokens[0]); err == nil {
			t.Error("a new replica let a revoked token in")
		}
	}
	// Revoked by the old replica (one key): the rotating replica hears it,
	// the one with the new key alone does not.
	if err := old.tier.Revoke(context.Background(), tokenid.Revocation(tokens[1])); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, time.Second, "the previous key's revocation reaches the rotating replica", func() bool {
		_, _, err := lookup(t, both, tokens[1])
		return err != nil
	})
	if _, how, err := lookup(t, fresh, tokens[1]); err != nil || how != authn.Hit {
		t.Errorf("the new-key-only replica: %v %v, want its hit (it knows not the old key)", how, err)
	}
	// Holds go under both keys.
	both.tier.PublishHold(time.Now().Add(time.Minute))
	stacktest.Eventually(t, time.Second, "the hold reaches either key's replica", func() bool {
		return old.holds.Load() == 1 && fresh.holds.Load() == 1
	})
	// While rotating, a value that does not open is not deleted.
	const token = "tok-rot-garbage-0123456789"
	name, _, _ := fleet.Names(fleetKey2, "test:", token)
	c := rs.Client()
	c.Set(context.Background(), name, "not-sealed", time.Hour)
	if _, how, err := lookup(t, newReplica(t, rs.Addr, f, rotate(fleetKey2, fleetKey)), token); err != nil || how != authn.Miss {
		t.Fatalf("%v %v", how, err)
	}
	if v, _ := c.Get(context.Background(), name).Result(); v == "" {
		t.Error("a value that did not open was deleted while two keys are set")
	}
}

// rotate sets the replica's fleet keys.
func rotate(key, previous string) func(*fleet.Settings) {
	return func(s *fleet.Settings) { s.Key, s.PreviousKey = key, previous }
}

// TestBudgetBound: a budget state no replica could have written (later
// than now + burst × interval, or not a number) is reset: it never makes a
// wait longer than one emission interval.
func TestBudgetBound(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	a := newReplica(t, rs.Addr, f)
	local := authn.NewRateLimited(f, 1, nil)
	const perSecond = 10 // interval 100ms, burst 10
	b := a.tier.NewBudget(f, local, perSecond)
	c := rs.Client()
	ctx := context.Background()
	for _, v := range []string{"99999999999999999999", "1e300", "not-a-number"} {
		c.Set(ctx, "test:budget", v, 0)
		before := a.obs.rejections("budget corrupt")
		if _, err := b.Verify(ctx, "t"); err != nil {
			t.Fatalf("state %q: %v, want reset and allowed", v, err)
		}
		if a.obs.rejections("budget corrupt") != before+1 {
			t.Errorf("state %q: not counted as corrupt", v)
		}
	}
	// A legitimate state: the burst spent, the next wait is at most one
	// interval.
	c.Del(ctx, "test:budget")
	for range perSecond {
		b.Verify(ctx, "t")
	}
	_, err := b.Verify(ctx, "t")
	var retry time.Time
	if fe := asFault(err); fe != nil {
		retry = fe.RetryAfter
	}
	if retry.IsZero() || time.Until(retry) > 100*time.Millisecond {
		t.Errorf("over budget: %v (retry in %s), want a wait of at most 100ms", err, time.Until(retry))
	}
}

func asFault(err error) *fault.Error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

// TestStartLoadsScripts: Start loads every script, so that the first
// calls on a busy machine do not send them whole.
func TestStartLoadsScripts(t *testing.T) {
	rs := stacktest.StartRedis(t)
	newReplica(t, rs.Addr, &idp{})
	var shas []string
	for _, src := range fleet.Scripts() {
		sum := sha1.Sum([]byte(src))
		shas = append(shas, hex.EncodeToString(sum[:]))
	}
	got, err := rs.Client().ScriptExists(context.Background(), shas...).Result()
	if err != nil || slices.Contains(got, false) {
		t.Errorf("scripts loaded %v %v, want all", got, err)
	}
}

// TestCallerGoneIsNoRedisFailure: a call cut short because its caller's
// context ended (a request gone, a deadline of the caller's) says nothing
// about Redis: the breaker stays closed.
func TestCallerGoneIsNoRedisFailure(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	a := newReplica(t, rs.Addr, f)
	b := a.tier.NewBudget(f, f, 1000)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for range 10 {
		b.Verify(ctx, "t")
	}
	if h := a.tier.Health(context.Background()); h != "ok" {
		t.Errorf("Health %q after callers went away, want ok", h)
	}
}
