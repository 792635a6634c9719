// Package soak is a small load driver for authgate: workers send a steady
// mix of requests that must be allowed, denied or rejected, with tokens
// that rotate, and every answer is checked against what its kind must get.
// `make soak` runs it for SOAK_DURATION; the fault tests use it to put
// authgate under load while an upstream restarts or authgate shuts down.
package soak

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Kind is a kind of request, named for what it must get.
type Kind string

// Kinds of requests and the status each must get when all is well.
const (
	Allow     Kind = "allow"     // active token, allowed route: 200
	Deny      Kind = "deny"      // active token, route the policy denies: 403
	Invalid   Kind = "invalid"   // unknown well-formed token: 401
	Malformed Kind = "malformed" // not a b64token: 401, never introspected
	NoToken   Kind = "no_token"  // no Authorization header: 401
)

// Expected is the status each kind gets when authgate and its upstreams are well.
var Expected = map[Kind]int{Allow: 200, Deny: 403, Invalid: 401, Malformed: 401, NoToken: 401}

// Mix weighs the kinds; the zero Mix means DefaultMix.
type Mix map[Kind]int

// DefaultMix is mostly allowed traffic with a steady share of the rest.
var DefaultMix = Mix{Allow: 70, Deny: 15, Invalid: 10, Malformed: 3, NoToken: 2}

// Pool is a set of active tokens that rotates: Rotate replaces the oldest.
type Pool struct {
	mu     sync.RWMutex
	tokens []string
	next   int
}

// NewPool holds tokens.
func NewPool(tokens []string) *Pool { return &Pool{tokens: tokens} }

// Pick returns a random token of the pool.
func (p *Pool) Pick() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.tokens[rand.IntN(len(p.tokens))]
}

// Rotate replaces the oldest token by tok.
func (p *Pool) Rotate(tok string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[p.next] = tok
	p.next = (p.next + 1) % len(p.tokens)
}

// Driver sends load at a gateway.
type Driver struct {
	// Traffic is authgate's traffic base URL, e.g. http://127.0.0.1:8086.
	Traffic string
	// Workers is the number of concurrent clients; each sends one request
	// after another.
	Workers int
	// Rate, when positive, paces all workers together to that many requests
	// per second: a steady load rather than as much as the machine takes.
	Rate float64
	// Pool provides the active tokens.
	Pool *Pool
	Mix  Mix
	// Client sends the requests; nil means a fresh pooled client.
	Client *http.Client
	// OnAnswer, when set, sees every answer (status 0 on a transport error).
	OnAnswer func(k Kind, status int, err error, at time.Time)
}

// Result counts the answers of a run.
type Result struct {
	Requests   int64
	Errors     int64                  // transport errors
	Statuses   map[Kind]map[int]int64 // kind -> status -> count
	Unexpected int64                  // answers other than Expected
	Duration   time.Duration
}

func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %s (%.0f/s), %d transport errors, %d unexpected statuses;",
		r.Requests, r.Duration.Round(time.Millisecond), float64(r.Requests)/r.Duration.Seconds(), r.Errors, r.Unexpected)
	kinds := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s=%v", k, r.Statuses[Kind(k)])
	}
	return b.String()
}

// Run sends load until ctx ends and returns the counts.
func (d *Driver) Run(ctx context.Context) *Result {
	mix := d.Mix
	if len(mix) == 0 {
		mix = DefaultMix
	}
	var kinds []Kind
	for k, w := range mix {
		for range w {
			kinds = append(kinds, k)
		}
	}
	client := d.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: d.Workers}}
		defer client.CloseIdleConnections()
	}
	var mu sync.Mutex
	res := &Result{Statuses: map[Kind]map[int]int64{}}
	var requests, errs, unexpected atomic.Int64
	var pace *rate.Limiter
	if d.Rate > 0 {
		pace = rate.NewLimiter(rate.Limit(d.Rate), max(1, int(d.Rate/100)))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range d.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[Kind]map[int]int64{}
			for ctx.Err() == nil {
				if pace != nil && pace.Wait(ctx) != nil {
					break
				}
				k := kinds[rand.IntN(len(kinds))]
				status, err := d.send(ctx, client, k)
				if err != nil && ctx.Err() != nil {
					break // the run ended mid-request
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
				} else if status != Expected[k] {
					unexpected.Add(1)
				}
				if local[k] == nil {
					local[k] = map[int]int64{}
				}
				local[k][status]++
				if d.OnAnswer != nil {
					d.OnAnswer(k, status, err, time.Now())
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for k, m := range local {
				if res.Statuses[k] == nil {
					res.Statuses[k] = map[int]int64{}
				}
				for s, n := range m {
					res.Statuses[k][s] += n
				}
			}
		}()
	}
	wg.Wait()
	res.Requests, res.Errors, res.Unexpected, res.Duration = requests.Load(), errs.Load(), unexpected.Load(), time.Since(start)
	return res
}

func (d *Driver) send(ctx context.Context, c *http.Client, k Kind) (int, error) {
	path := "/sayhello"
	if k == Deny {
		path = "/saysecret"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Traffic+path, nil)
	if err != nil {
		return 0, err
	}
	switch k {
	case Allow, Deny:
		req.Header.Set("Authorization", "Bearer "+d.Pool.Pick())
	case Invalid:
		req.Header.Set("Authorization", "Bearer "+RandomToken())
	case Malformed:
		req.Header.Set("Authorization", "Bearer "+RandomToken()+",x")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	return resp.StatusCode, nil
}

// RandomToken is a well-formed token nobody issued.
func RandomToken() string {
	b := make([]byte, 24)
	crand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
