// Package fleet makes several authgate replicas act as one, on Redis: a
// token answer cache shared behind each replica's own (sealed so that
// whoever reads Redis learns neither tokens nor claims), one introspection
// per token across the fleet (a short lock, the others wait for its
// answer), the introspection budget and the IdP's 429 hold across
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
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/lograte"
)

// The breaker in front of Redis: a dead or slow Redis costs at most
// breakerFailures timeouts, then nothing for breakerOpen, then one probe.
const (
	breakerFailures = 5
	breakerOpen     = time.Second
)

// pollInterval is how often a replica waiting for another's introspection
// asks Redis again, should the pub/sub notice be lost.
const pollInterval = 25 * time.Millisecond

// Observer is told of every Redis call and of revocations; package metrics
// implements it.
type Observer interface {
	// Redis counts one call: op names it, result is ok, miss, error or
	// breaker_open (not sent).
	Redis(op, result string, d time.Duration)
	// Revocation counts one revocation by source: api or pubsub.
	Revocation(source string)
}

// Settings configure a Tier.
type Settings struct {
	// Client is the Redis client (Dial).
	Client redis.UniversalClient
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
	// OnRevoked is called for a revocation another replica announced.
	OnRevoked func(key [sha256.Size]byte)
	// OnHold is called for a 429 hold another replica announced.
	OnHold func(until time.Time)
	// OnBreakerChange, when set, is told of the Redis breaker's transitions.
	OnBreakerChange func(name string, from, to breaker.State)
}

// Tier is the shared tier. Its methods are safe for concurrent use.
type Tier struct {
	s       Settings
	rdb     redis.UniversalClient
	now     func() time.Time
	breaker *breaker.Breaker
	channel string
	id      string // this replica, in its pub/sub messages

	claimScript, putScript, revokeScript, budgetScript *redis.Script

	mu      sync.Mutex
	waiters map[[sha256.Size]byte]chan struct{} // closed when the key's answer may have come
	lockSeq uint64

	ps   *redis.PubSub
	done chan struct{}

	failed lograte.Limit // one line per lograte.Every for failed calls
}

// New returns a Tier on s.Client; Start makes it listen to the other
// replicas, Close stops it and closes the client.
func New(s Settings) *Tier {
	t := &Tier{s: s, rdb: s.Client, now: s.Now, channel: s.Prefix + "events",
		waiters: map[[sha256.Size]byte]chan struct{}{}, done: make(chan struct{})}
	if t.now == nil {
		t.now = time.Now
	}
	var id [8]byte
	rand.Read(id[:])
	t.id = hex.EncodeToString(id[:])
	t.breaker = breaker.New(breaker.Settings{Name: "redis", Failures: breakerFailures, OpenTimeout: breakerOpen,
		IsFailure: func(err error) bool { return !errors.Is(err, redis.Nil) }, OnStateChange: s.OnBreakerChange})
	t.claimScript = redis.NewScript(claimLua)
	t.putScript = redis.NewScript(putLua)
	t.revokeScript = redis.NewScript(revokeLua)
	t.budgetScript = redis.NewScript(budgetLua)
	return t
}

// Start listens to the other replicas (revocations, holds, answers come
// in), once the callbacks of Settings can be called. It does not fail:
// with Redis down, the subscription comes up when Redis does (go-redis
// reconnects it, after a restart too).
func (t *Tier) Start() {
	t.ps = t.rdb.Subscribe(context.Background(), t.channel)
	go t.listen()
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
// reports it. redis.Nil (no such key) is an answer, not a failure.
func (t *Tier) do(ctx context.Context, op string, f func(context.Context) error) error {
	done, err := t.breaker.Allow()
	if err != nil {
		t.observe(op, "breaker_open", 0)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.s.Timeout)
	start := time.Now()
	err = f(ctx)
	d := time.Since(start)
	cancel()
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

// keys are the Redis keys of one token. The hash tag puts them in one slot
// of a Redis Cluster, so that one script may touch them all.
type keys struct {
	answer, tombstone, lock string
}

func (t *Tier) keysOf(key [sha256.Size]byte) keys {
	tag := t.s.Prefix + "{" + hex.EncodeToString(key[:]) + "}:"
	return keys{answer: tag + "answer", tombstone: tag + "revoked", lock: tag + "lock"}
}

// Messages on the channel: "f HEX" (an answer came, or its lock was let
// go), "r HEX ID" (revoked by replica ID), "h UNIXNANO ID" (a 429 hold).
func (t *Tier) listen() {
	defer close(t.done)
	for m := range t.ps.Channel(redis.WithChannelSize(1024)) {
		t.handle(m.Payload)
	}
}

func (t *Tier) handle(msg string) {
	kind, rest, _ := strings.Cut(msg, " ")
	arg, from, _ := strings.Cut(rest, " ")
	switch kind {
	case "f":
		if key, ok := parseKey(arg); ok {
			t.wake(key)
		}
	case "r":
		if key, ok := parseKey(arg); ok && from != t.id {
			if t.s.OnRevoked != nil {
				t.s.OnRevoked(key)
			}
			if t.s.Observer != nil {
				t.s.Observer.Revocation("pubsub")
			}
			t.wake(key)
		}
	case "h":
		if n, err := strconv.ParseInt(arg, 10, 64); err == nil && from != t.id && t.s.OnHold != nil {
			t.s.OnHold(time.Unix(0, n))
		}
	}
}

func parseKey(s string) (key [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return key, false
	}
	_, err := hex.Decode(key[:], []byte(s))
	return key, err == nil
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
	t.mu.Lock()
	t.lockSeq++
	n := t.lockSeq
	t.mu.Unlock()
	return t.id + "-" + strconv.FormatUint(n, 10)
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
