package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// A proof is used once (RFC 9449 section 11.1): its jti is remembered
// until the proof can no longer be valid (its iat plus the accepted age and
// leeway), and a second use of the same (key, jti) is refused. The store
// never sees the jti or the thumbprint: a ReplayKey is a hash of both.

// ReplayKey names one proof to a ReplayStore: the SHA-256 of the key's
// thumbprint and the proof's jti. It cannot be turned back into either.
type ReplayKey [sha256.Size]byte

// replayKeyOf names the proof (jkt, jti). A thumbprint is base64url, so
// the NUL between them makes the pair unambiguous.
func replayKeyOf(jkt, jti string) ReplayKey {
	h := sha256.New()
	h.Write([]byte("authgate dpop jti v1\x00"))
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k ReplayKey
	h.Sum(k[:0])
	return k
}

// String is the key in hex, as a fleet store names it (after a prefix).
func (k ReplayKey) String() string { return hex.EncodeToString(k[:]) }

// ReplayStore remembers proofs that were used.
type ReplayStore interface {
	// Use records key for ttl and reports whether this is its first use
	// (fresh). An error means the store could not tell: the Verifier then
	// refuses the proof (503), it never accepts one it could not record.
	Use(ctx context.Context, key ReplayKey, ttl time.Duration) (fresh bool, err error)
}

// DefaultReplayEntries bounds a LocalReplay made with size 0.
const DefaultReplayEntries = 100_000

// LocalReplay is a ReplayStore in the process: an LRU of at most size keys,
// each kept until its ttl ends. It never fails.
//
// When it is full the oldest key is forgotten even if its proof could
// still be valid: replaying that proof on this replica would then pass.
// Filling it takes size proofs that pass every other check (a valid token
// bound to the attacker's key) within one replay window, and a fleet store
// still refuses the replay.
type LocalReplay struct {
	mu  sync.Mutex
	lru *simplelru.LRU[ReplayKey, time.Time] // key -> end of its life
	now func() time.Time
}

var _ ReplayStore = (*LocalReplay)(nil)

// NewLocalReplay makes a LocalReplay of at most size keys
// (DefaultReplayEntries when 0) on the clock now (time.Now when nil).
func NewLocalReplay(size int, now func() time.Time) *LocalReplay {
	if size <= 0 {
		size = DefaultReplayEntries
	}
	if now == nil {
		now = time.Now
	}
	lru, err := simplelru.NewLRU[ReplayKey, time.Time](size, nil)
	if err != nil {
		panic(err) // only for size <= 0, excluded above
	}
	return &LocalReplay{lru: lru, now: now}
}

// Use implements ReplayStore.
func (s *LocalReplay) Use(_ context.Context, key ReplayKey, ttl time.Duration) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Forget what can no longer be replayed, oldest first. Keys come in
	// roughly in the order they end, so this stops at the first live one.
	for {
		_, until, ok := s.lru.GetOldest()
		if !ok || until.After(now) {
			break
		}
		s.lru.RemoveOldest()
	}
	if until, ok := s.lru.Peek(key); ok && until.After(now) {
		return false, nil
	}
	s.lru.Add(key, now.Add(ttl))
	return true, nil
}

// Len is the number of keys held, expired ones not yet swept included.
func (s *LocalReplay) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// FleetStore is a store shared by the replicas (Redis's SET NX PX):
// SetNX sets key for ttl unless it is set, and reports whether it set it.
type FleetStore interface {
	SetNX(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// FleetKeyPrefix starts every key LayeredReplay gives its fleet store.
const FleetKeyPrefix = "dpop:jti:"

// LayeredReplay asks its Local store first, then the Fleet store: a proof
// used on this replica is refused without a round trip, one used on
// another replica is refused by the fleet store.
//
// When the fleet store fails (Redis down, slow, refusing writes) the local
// answer stands: each replica still refuses the replays it saw itself,
// and a proof replayed on another replica than the first within the replay
// window passes. That is the price of not refusing every DPoP request while
// Redis is down.
type LayeredReplay struct {
	Local ReplayStore
	Fleet FleetStore
	// OnFleetError, when set, is told of every fleet failure (for a metric
	// or a rate-limited log line).
	OnFleetError func(error)
}

var _ ReplayStore = (*LayeredReplay)(nil)

// Use implements ReplayStore. It fails only when Local fails.
func (s *LayeredReplay) Use(ctx context.Context, key ReplayKey, ttl time.Duration) (bool, error) {
	fresh, err := s.Local.Use(ctx, key, ttl)
	if err != nil || !fresh || s.Fleet == nil {
		return fresh, err
	}
	fresh, err = s.Fleet.SetNX(ctx, FleetKeyPrefix+key.String(), ttl)
	if err != nil {
		if s.OnFleetError != nil {
			s.OnFleetError(err)
		}
		return true, nil
	}
	return fresh, nil
}
