package soak_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
	"github.com/authgate/authgate/test/soak"
)

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
	// Steady load, with headroom on a small shared machine; 0 = as fast as it goes.
	rps := 500.0
	if r, err := strconv.ParseFloat(os.Getenv("SOAK_RPS"), 64); err == nil && r >= 0 {
		rps = r
	}
	o := stacktest.StartOPA(t)
	idp := stacktest.StartIDP(t, 2*time.Millisecond)
	env := stacktest.StackEnv(idp, o)
	// A small cache with short lives, so that eviction, expiry and
	// re-introspection all happen many times during the run.
	env["CACHE_SIZE"], env["CACHE_TTL"], env["CACHE_NEGATIVE_TTL"] = "400", "3s", "1s"
	gw := stacktest.StartGateway(t, env)
	gw.Logs.DropAccessLog() // kept, 70,000 lines would be most of the heap measured below

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
	d := &soak.Driver{Traffic: gw.Traffic, Workers: workers, Rate: rps, Pool: pool, Client: client}
	run := func(dur time.Duration) *soak.Result {
		ctx, cancel := context.WithTimeout(context.Background(), dur)
		defer cancel()
		r := d.Run(ctx)
		client.CloseIdleConnections()
		return r
	}

	before := soak.Measure()
	warm := run(min(max(dur/6, 5*time.Second), 20*time.Second))
	base := soak.Settle(before.Other())
	t.Logf("warm-up: %s", warm)
	t.Logf("baseline after warm-up: %d goroutines (%d of them pooled connections), heap %.1f MiB (before any load: %d goroutines, %.1f MiB)",
		base.Goroutines, base.Pooled, soak.MiB(base.Heap), before.Goroutines, soak.MiB(before.Heap))

	res := run(dur)
	stopRotating()
	n := <-rotated
	end := soak.Settle(base.Other())
	t.Logf("soak: %s", res)
	t.Logf("tokens rotated: %d; introspections: %d", n, idp.IntrospectCalls())
	t.Logf("after the soak: %d goroutines (%d of them pooled connections; baseline %d and %d), heap %.1f MiB (baseline %.1f MiB)",
		end.Goroutines, end.Pooled, base.Goroutines, base.Pooled, soak.MiB(end.Heap), soak.MiB(base.Heap))

	if warm.Unexpected+warm.Errors+res.Unexpected+res.Errors != 0 {
		t.Errorf("unexpected answers: warm-up %d + %d errors, soak %d + %d errors; authgate's warnings and errors:\n%s",
			warm.Unexpected, warm.Errors, res.Unexpected, res.Errors, warnings(gw.Logs.String()))
	}
	if res.Requests < int64(dur.Seconds()) {
		t.Errorf("only %d requests", res.Requests)
	}
	// Pooled connections: authgate's to OPA and to the IdP (two goroutines
	// each) and the IdP's side of them (one), at most one per worker each.
	if end.Other() > base.Other()+2 || end.Pooled > 5*workers {
		t.Errorf("goroutines: %d (%d pooled) after, baseline %d (%d pooled): a leak", end.Goroutines, end.Pooled, base.Goroutines, base.Pooled)
		t.Log(soak.GoroutineDump())
	}
	// The heap may differ by what the cache and the pools hold at either
	// moment, not by anything proportional to the requests served.
	if limit := base.Heap + base.Heap/2 + 4<<20; end.Heap > limit {
		t.Errorf("heap: %.1f MiB after, baseline %.1f MiB: a leak", soak.MiB(end.Heap), soak.MiB(base.Heap))
	}
	if err := gw.Stop(); err != nil {
		t.Errorf("authgate Run: %v", err)
	}
}

// warnings counts authgate's WARN and ERROR log lines by message.
func warnings(logs string) string {
	counts := map[string]int{}
	var order []string
	for _, line := range strings.Split(logs, "\n") {
		var m struct{ Level, Msg, Err, From, To string }
		if json.Unmarshal([]byte(line), &m) != nil || (m.Level != "WARN" && m.Level != "ERROR") {
			continue
		}
		k := m.Level + " " + m.Msg + " " + m.From + ">" + m.To + " " + m.Err
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	var b strings.Builder
	for _, k := range order {
		fmt.Fprintf(&b, "  %6d× %s\n", counts[k], k)
	}
	return b.String()
}
