// Package fleet makes several authgate replicas act as one, on Redis: a
// token answer cache shared behind each replica's own (sealed so that
// whoever reads Redis learns neither tokens nor claims, and whoever writes
// to it without the fleet key cannot forge an answer: keys.go), one
// introspection per token across the fleet (a short lock, the others wait
// for its answer), the introspection budget and the IdP's 429 hold across
// replicas, and revocations pushed to every replica.
//
// Redis is an optimisation, never a new way to fail: every call is bounded
// by REDIS_TIMEOUT and behind a circuit breaker, and whatever Redis cannot
// answer is answered as if there were no Redis (from the replica's own
// cache or the IdP).
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/internal/tokenid"
)

// The breaker in front of Redis: a dead or slow Redis costs at most
// breakerFailures timeouts, then nothing for breakerOpen, then one probe.
const (
	breakerFailures = 5
	breakerOpen     = time.Second
)

// pollInterval is how soon a replica waiting for another's introspection
// first asks Redis again, should the pub/sub notice be lost; each further
// wait doubles, up to max(pollMax, LockTTL/8).
const (
	pollInterval = 25 * time.Millisecond
	pollMax      = 400 * time.Millisecond
)

// One Fetch makes at most maxClaims claims, of which at most maxBadValues
// may find a value that does not open or has ended: past either, or past
// the lock's life, it introspects on its own. A hostile or confused Redis
// (a value made PERSIST, a READONLY replica where the delete fails, a
// clock ahead) then costs a few calls, never a loop.
const (
	maxClaims    = 16
	maxBadValues = 2
)

// messageSkew is how far the time a message was sent may be from this
// replica's clock, either way: past it the message is dropped, so that
// one recorded from the channel cannot be played back later.
const messageSkew = time.Minute

// Observer is told of every Redis call and of revocations; package metrics
// implements it.
type Observer interface {
	// Redis counts one call: op names it, result is ok, miss, error or
	// breaker_open (not sent).
	Redis(op, result string, d time.Duration)
	// Revocation counts one revocation by source: api or pubsub.
	Revocation(source string)
	// Rejected counts one thing read from Redis and not believed: what is
	// message, answer, tombstone, budget or reply; reason is forged (no
	// fleet key's proof), stale (a message's time out of bounds), ended
	// (an answer whose life is over), corrupt (budget state out of
	// bounds) or unexpected (a reply of the wrong shape).
	Rejected(what, reason string)
}

// Settings configure a Tier.
type Settings struct {
	// Client is the Redis client (Dial).
	Client redis.UniversalClient
	// Key is the fleet key (FLEET_KEY): it seals and signs what this
	// replica writes, and opens and verifies what it reads. Required.
	Key string
	// PreviousKey (FLEET_KEY_PREVIOUS), when set, is accepted for reading
	// and verifying too, during a rotation; revocations and holds are then
	// sent under both keys.
	PreviousKey string
	// Issuer is the issuer's part of every token key name: tokens of two
	// issuers never share a key space. "" for the one issuer (the primary).
	// Another issuer's tier has its own pub/sub channel too (its 429 holds
	// hold its own introspection only) and its own breaker, named
	// "redis_<Issuer>".
	Issuer string
	// Prefix starts every key and the pub/sub channel (REDIS_KEY_PREFIX).
	Prefix string
	// Timeout bounds every Redis call (REDIS_TIMEOUT).
	Timeout time.Duration
	// LockTTL bounds the lock of one introspection, and so the wait of the
	// other replicas for its answer (OKTA_TIMEOUT).
	LockTTL time.Duration
	// Tombstone is how long a revoked token stays refused (CACHE_TTL: the
	// longest an answer can have been cached anywhere).
	Tombstone time.Duration
	// Now is the clock of the answers' lives; nil means time.Now.
	Now func() time.Time
	// Observer, when set, is told of every call.
	Observer Observer
	// Log receives the state changes of the tier (breaker, subscription).
	Log *slog.Logger
	// OnHold is called for a 429 hold another replica announced.
	OnHold func(until time.Time)
	// OnBreakerChange, when set, is told of the Redis breaker's transitions.
	OnBreakerChange func(name string, from, to breaker.State)
}

// Tier is the shared tier. Its methods are safe for concurrent use.
type Tier struct {
	s       Settings
	keys    keyring
	rdb     redis.UniversalClient
	now     func() time.Time
	breaker *breaker.Breaker
	channel string
	id      [8]byte // this replica, in its pub/sub messages

	claimScript, putScript, deleteScript, budgetScript *redis.Script

	mu      sync.Mutex
	waiters map[[sha256.Size]byte]chan struct{} // closed when the key's answer may have come

	// A lock's id is lockPrefix (this replica) and lockSeq (the Fetch);
	// its life is lockMS (LockTTL in ms, as the claim script takes it).
	lockPrefix, lockMS string
	lockSeq            atomic.Uint64

	ps        *redis.PubSub
	done      chan struct{}
	onRevoked func(key [sha256.Size]byte) // set by Start, before it listens

	failed lograte.Limit // one line per lograte.Every for failed calls
}

// New returns a Tier on s.Client; Start makes it listen to the other
// replicas, Close stops it and closes the client. It fails only without a
// fleet key.
func New(s Settings) (*Tier, error) {
	ring, err := newKeyring(s.Key, s.PreviousKey)
	if err != nil {
		return nil, err
	}
	channel, breakerName := s.Prefix+"events", "redis"
	if s.Issuer != "" {
		channel, breakerName = channel+":"+s.Issuer, breakerName+"_"+s.Issuer
	}
	t := &Tier{s: s, keys: ring, rdb: s.Client, now: s.Now, channel: channel,
		waiters: map[[sha256.Size]byte]chan struct{}{}, done: make(chan struct{})}
	if t.now == nil {
		t.now = time.Now
	}
	rand.Read(t.id[:])
	t.lockPrefix = hex.EncodeToString(t.id[:]) + "-"
	t.lockMS = strconv.FormatInt(max(s.LockTTL.Milliseconds(), 1), 10)
	t.breaker = breaker.New(breaker.Settings{Name: breakerName, Failures: breakerFailures, OpenTimeout: breakerOpen,
		IsFailure: func(err error) bool { return !errors.Is(err, redis.Nil) }, OnStateChange: s.OnBreakerChange})
	t.claimScript = redis.NewScript(claimLua)
	t.putScript = redis.NewScript(putLua)
	t.deleteScript = redis.NewScript(deleteLua)
	t.budgetScript = redis.NewScript(budgetLua)
	return t, nil
}

// warmConns is how many connections Start opens ahead of the first
// requests.
const warmConns = 8

// Start loads the scripts and opens a few connections (so that the first
// requests, cold tokens on a busy machine, do not pay for EVAL and dials
// under REDIS_TIMEOUT), then listens to the other replicas (revocations,
// holds, answers come in), once the callbacks of Settings can be called.
// onRevoked (nil: none) is called for each revocation another replica
// announces, with the token's revocation id (tokenid.Revocation): given
// here, not in Settings, because what it revokes (the token caches) is
// built over the tier.
// It does not fail: with Redis down, the subscription comes up when Redis
// does (go-redis reconnects it, after a restart too), and a script not
// loaded is sent whole once (EVALSHA, then EVAL).
func (t *Tier) Start(onRevoked func(key [sha256.Size]byte)) {
	t.onRevoked = onRevoked
	t.warm()
	t.ps = t.rdb.Subscribe(context.Background(), t.channel)
	go t.listen()
}

func (t *Tier) warm() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*t.s.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	// SCRIPT LOAD, its reply ignored: Script.Load would take the digest
	// Redis answers for the script's own.
	for _, src := range []string{claimLua, putLua, deleteLua, budgetLua} {
		wg.Add(1)
		go func() { defer wg.Done(); t.rdb.ScriptLoad(ctx, src) }()
	}
	for range warmConns {
		wg.Add(1)
		go func() { defer wg.Done(); t.rdb.Ping(ctx) }()
	}
	wg.Wait()
}

// Close stops listening and closes the client.
func (t *Tier) Close() error {
	var err error
	if t.ps != nil {
		err = t.ps.Close()
		<-t.done
	}
	return errors.Join(err, t.rdb.Close())
}

// Breaker is the breaker in front of Redis.
func (t *Tier) Breaker() *breaker.Breaker { return t.breaker }

// Health says how Redis stands, for /readyz: "ok", "breaker open",
// "breaker half-open" or "unreachable".
func (t *Tier) Health(ctx context.Context) string {
	if h := t.breaker.Health(); h != "ok" {
		return h
	}
	if err := t.do(ctx, "ping", func(ctx context.Context) error { return t.rdb.Ping(ctx).Err() }); err != nil {
		return "unreachable"
	}
	return "ok"
}

// do runs one Redis call f behind the breaker, bounded by Timeout, and
// reports it. redis.Nil (no such key) is an answer, not a failure; nor is
// a call cut short because its caller's ctx ended (a request gone, a wait
// over): that says nothing about Redis.
func (t *Tier) do(ctx context.Context, op string, f func(context.Context) error) error {
	done, err := t.breaker.Allow()
	if err != nil {
		t.observe(op, "breaker_open", 0)
		return err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, t.s.Timeout)
	start := time.Now()
	err = f(ctx)
	d := time.Since(start)
	cancel()
	if err != nil && parent.Err() != nil {
		done(context.Canceled) // excluded: neither a success nor a failure
		return err
	}
	switch {
	case err == nil:
		t.observe(op, "ok", d)
	case errors.Is(err, redis.Nil):
		t.observe(op, "miss", d)
	default:
		t.observe(op, "error", d)
		if t.s.Log != nil {
			t.failed.Log(t.s.Log, slog.LevelWarn, time.Now(), "redis call failed: answered without the shared tier", "op", op, "err", err)
		}
	}
	done(err)
	return err
}

func (t *Tier) observe(op, result string, d time.Duration) {
	if t.s.Observer != nil {
		t.s.Observer.Redis(op, result, d)
	}
}

func (t *Tier) reject(what, reason string) {
	if t.s.Observer != nil {
		t.s.Observer.Rejected(what, reason)
	}
}

// names are the Redis keys of one token under one fleet key. The hash tag
// (the keyed name of the revocation id) puts them in one slot of a Redis
// Cluster, so that one script may touch them all; every spelling of a JWS
// shares the tombstone and has its own answer and lock.
type names struct {
	answer, tombstone, lock string
}

func (t *Tier) namesOf(k *fleetKey, id tokenid.ID) names {
	tag := t.s.Prefix + "{" + k.nameOf(t.s.Issuer, id.Revocation) + "}:"
	exact := k.nameOf(t.s.Issuer, id.Exact)[:32] // 128 bits: unique within the tag
	return names{answer: tag + "answer:" + exact, tombstone: tag + "revoked", lock: tag + "lock:" + exact}
}

// tombstoneName is the tombstone's key of the revocation id rev under k.
func (t *Tier) tombstoneName(k *fleetKey, rev [sha256.Size]byte) string {
	return t.s.Prefix + "{" + k.nameOf(t.s.Issuer, rev) + "}:revoked"
}

// message is a message of kind with arg, sent now by this replica,
// sealed under keys (keys.go).
func (t *Tier) message(keys keyring, kind byte, arg []byte) string {
	return sealMessage(keys, t.channel, message{kind: kind, sent: t.now().UnixNano(), from: t.id, arg: arg})
}

func (t *Tier) listen() {
	defer close(t.done)
	for m := range t.ps.Channel(redis.WithChannelSize(1024)) {
		t.handle(m.Payload)
	}
}

// handle acts on one message (keys.go), once it proves that a holder of a
// fleet key sent it lately; any other is dropped and counted.
func (t *Tier) handle(payload string) {
	m, ok := t.keys.openMessage(t.channel, payload)
	if !ok {
		t.reject("message", "forged")
		return
	}
	if d := t.now().Sub(time.Unix(0, m.sent)); d > messageSkew || d < -messageSkew {
		t.reject("message", "stale")
		return
	}
	self := m.from == t.id
	switch m.kind {
	case 'f':
		if key, ok := idArg(m.arg); ok {
			t.wake(key)
		}
	case 'r':
		if key, ok := idArg(m.arg); ok && !self {
			if t.onRevoked != nil {
				t.onRevoked(key)
			}
			if t.s.Observer != nil {
				t.s.Observer.Revocation("pubsub")
			}
		}
	case 'h':
		if len(m.arg) == 8 && !self && t.s.OnHold != nil {
			t.s.OnHold(time.Unix(0, int64(binary.BigEndian.Uint64(m.arg))))
		}
	}
}

func idArg(b []byte) (key [sha256.Size]byte, ok bool) {
	if len(b) != sha256.Size {
		return key, false
	}
	copy(key[:], b)
	return key, true
}

// watch returns a channel closed when the key's answer may have come.
// One flight per key runs in a process (the Cache coalesces), so one
// waiter per key.
func (t *Tier) watch(key [sha256.Size]byte) (<-chan struct{}, func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.waiters[key]
	if !ok {
		ch = make(chan struct{})
		t.waiters[key] = ch
	}
	return ch, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.waiters[key] == ch {
			delete(t.waiters, key)
		}
	}
}

func (t *Tier) wake(key [sha256.Size]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.waiters[key]; ok {
		close(ch)
		delete(t.waiters, key)
	}
}

// lockID names one lock taken by this replica.
func (t *Tier) lockID() string {
	return t.lockPrefix + strconv.FormatUint(t.lockSeq.Add(1), 10)
}

// Dial makes the client REDIS_URL names: redis:// or rediss:// (TLS) for
// one server; with addr= parameters, a Redis Cluster (ParseClusterURL);
// with master_name=, Sentinel (ParseFailoverURL). timeout bounds dialing,
// reads and writes; a call's context bounds it as a whole.
func Dial(rawURL string, timeout time.Duration) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("REDIS_URL: not a URL")
	}
	q := u.Query()
	// go-redis errors do not quote the password, but may the URL's other parts.
	wrap := func(err error) error { return fmt.Errorf("REDIS_URL: %w", err) }
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, wrap(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		return redis.NewFailoverClient(o), nil
	case q.Has("addr"):
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, wrap(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		return redis.NewClusterClient(o), nil
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, wrap(err)
	}
	// No retries: a call has REDIS_TIMEOUT in all, and a failed one is
	// answered without Redis anyway.
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.ContextTimeoutEnabled, o.MaxRetries = true, -1
	return redis.NewClient(o), nil
}
