package soak_test

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
	"github.com/authgate/authgate/test/soak"
)

// snapshot is the process's goroutines and live heap after a collection.
type snapshot struct {
	goroutines int
	// pooled are the goroutines of kept-alive HTTP connections (a client's
	// persistConn loops, a server's conn.serve): their number follows the
	// pools' sizes, which vary with the last burst, up to a bound.
	pooled int
	heap   uint64 // bytes, HeapAlloc after GC
}

// other is every goroutine that is not a pooled connection's.
func (s snapshot) other() int { return s.goroutines - s.pooled }

func measure() snapshot {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	s := snapshot{heap: m.HeapAlloc}
	_, profile, _ := strings.Cut(b.String(), "\n") // "goroutine profile: total N"
	for _, block := range strings.Split(profile, "\n\n") {
		n, _, ok := strings.Cut(block, " @ ")
		count, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue
		}
		s.goroutines += count
		if strings.Contains(block, "net/http.(*persistConn).") || strings.Contains(block, "net/http.(*conn).serve") {
			s.pooled += count
		}
	}
	return s
}

// settle waits (polling) until connections closed by the client are gone
// on the server side too, and returns the snapshot then.
func settle(limit int) snapshot {
	deadline := time.Now().Add(10 * time.Second)
	s := measure()
	for s.other() > limit && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling interval
		s = measure()
	}
	return s
}

// TestSoak runs authgate (in-process, so that its goroutines and heap can be
// read) with the real OPA and the development authorization server under a
// steady mix of allowed, denied and invalid requests with rotating tokens,
// for SOAK_DURATION (`make soak`; skipped otherwise). It fails on any
// unexpected status or transport error, and when goroutines or heap do not
// come back to the baseline taken after a warm-up at the same load.
func TestSoak(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("SOAK_DURATION"))
	if err != nil {
		t.Skip("set SOAK_DURATION (make soak) to run the soak test")
	}
	workers := 16
	if n, err := strconv.Atoi(os.Getenv("SOAK_WORKERS")); err == nil && n > 0 {
		workers = n
	}
	o := stacktest.StartOPA(t)
	idp := stacktest.StartIDP(t, 2*time.Millisecond)
	env := stacktest.StackEnv(idp, o)
	// A small cache with short lives, so that eviction, expiry and
	// re-introspection all happen many times during the run.
	env["CACHE_SIZE"], env["CACHE_TTL"], env["CACHE_NEGATIVE_TTL"] = "400", "3s", "1s"
	gw := stacktest.StartGateway(t, env)

	issue := func() string {
		tok, err := idp.Issue(stacktest.DemoClient, []string{"read_sayhello"}, 30*time.Second)
		if err != nil {
			panic(err)
		}
		return tok
	}
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = issue()
	}
	pool := soak.NewPool(tokens)
	// 20 new tokens a second: a token is used for about 5s of its 30s life.
	rotateCtx, stopRotating := context.WithCancel(context.Background())
	rotated := make(chan int)
	go func() {
		n := 0
		defer func() { rotated <- n }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-rotateCtx.Done():
				return
			case <-tick.C:
				pool.Rotate(issue())
				n++
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	d := &soak.Driver{Traffic: gw.Traffic, Workers: workers, Pool: pool, Client: client}
	run := func(dur time.Duration) *soak.Result {
		ctx, cancel := context.WithTimeout(context.Background(), dur)
		defer cancel()
		r := d.Run(ctx)
		client.CloseIdleConnections()
		return r
	}

	before := measure()
	warm := run(min(max(dur/6, 5*time.Second), 20*time.Second))
	base := settle(before.other())
	t.Logf("warm-up: %s", warm)
	t.Logf("baseline after warm-up: %d goroutines (%d of them pooled connections), heap %.1f MiB (before any load: %d goroutines, %.1f MiB)",
		base.goroutines, base.pooled, mib(base.heap), before.goroutines, mib(before.heap))

	res := run(dur)
	stopRotating()
	n := <-rotated
	end := settle(base.other())
	t.Logf("soak: %s", res)
	t.Logf("tokens rotated: %d; introspections: %d", n, idp.IntrospectCalls())
	t.Logf("after the soak: %d goroutines (%d of them pooled connections; baseline %d and %d), heap %.1f MiB (baseline %.1f MiB)",
		end.goroutines, end.pooled, base.goroutines, base.pooled, mib(end.heap), mib(base.heap))

	if warm.Unexpected+warm.Errors+res.Unexpected+res.Errors != 0 {
		t.Errorf("unexpected answers: warm-up %d + %d errors, soak %d + %d errors", warm.Unexpected, warm.Errors, res.Unexpected, res.Errors)
	}
	if res.Requests < int64(dur.Seconds()) {
		t.Errorf("only %d requests", res.Requests)
	}
	// Pooled connections: authgate's to OPA and to the IdP (two goroutines
	// each) and the IdP's side of them (one), at most one per worker each.
	if end.other() > base.other()+2 || end.pooled > 5*workers {
		t.Errorf("goroutines: %d (%d pooled) after, baseline %d (%d pooled): a leak", end.goroutines, end.pooled, base.goroutines, base.pooled)
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Log(b.String())
	}
	// The heap may differ by what the cache and the pools hold at either
	// moment, not by anything proportional to the requests served.
	if limit := base.heap + base.heap/2 + 4<<20; end.heap > limit {
		t.Errorf("heap: %.1f MiB after, baseline %.1f MiB: a leak", mib(end.heap), mib(base.heap))
	}
	if err := gw.Stop(); err != nil {
		t.Errorf("authgate Run: %v", err)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
