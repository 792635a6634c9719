package fault_test

import (
	"context"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
	"github.com/authgate/authgate/test/soak"
)

// TestGracefulShutdownUnderLoad sends SIGTERM to the process while requests
// are in flight (Run, in-process, catches it). Every request uses a token of its own, so
// each one that reached a handler made exactly one introspection: counted
// on the server side, that number must equal the 200s the clients got.
// Requests refused after the listener closed never reached a handler.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	o := startOPA(t)
	idp := stacktest.StartIDP(t, 100*time.Millisecond) // keeps requests in flight
	env := stacktest.StackEnv(idp, o)
	env["SHUTDOWN_TIMEOUT"] = "5s"
	gw := stacktest.StartGateway(t, env)

	tokens := make([]string, 3000)
	for i := range tokens {
		tok, err := idp.Issue(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	var next atomic.Int64
	var ok, other, transportErrs, afterStop atomic.Int64
	var stopAt atomic.Int64 // unix nanos, set when shutdown starts
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if i >= int64(len(tokens)) {
					return
				}
				r, err := stacktest.TryGet(client, gw.Traffic+"/sayhello", tokens[i])
				switch {
				case err != nil:
					transportErrs.Add(1)
					time.Sleep(5 * time.Millisecond) // refused: the listener is closed
				case r.Status == 200:
					ok.Add(1)
					if s := stopAt.Load(); s != 0 && time.Now().UnixNano() > s {
						afterStop.Add(1)
					}
				default:
					other.Add(1)
					t.Errorf("status %d during shutdown: %s", r.Status, r.Body)
				}
			}
		}()
	}
	stacktest.Eventually(t, 5*time.Second, "load running", func() bool { return ok.Load() >= 50 })
	stopAt.Store(time.Now().UnixNano())
	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gw.Logs.WaitFor(t, "shutting down", nil) // the signal, not Stop, began it
	err := gw.Stop()
	took := time.Since(start)
	stopLoad()
	wg.Wait()
	if err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if took > 5*time.Second {
		t.Errorf("Run returned after %s, past SHUTDOWN_TIMEOUT", took)
	}
	handled := idp.IntrospectCalls()
	t.Logf("shutdown took %s; %d answered 200 (%d of them after shutdown began), %d handled by the server, %d refused connections",
		took.Round(time.Millisecond), ok.Load(), afterStop.Load(), handled, transportErrs.Load())
	if handled != ok.Load() || other.Load() != 0 {
		t.Errorf("%d requests reached a handler but %d got their 200 (%d got another status)", handled, ok.Load(), other.Load())
	}
	if afterStop.Load() == 0 {
		t.Errorf("no request was in flight when shutdown began: the test proves nothing")
	}
	// No connection outlives Run: authgate's to OPA and the IdP are closed
	// (and with them the IdP's side), as are the clients' to authgate.
	client.CloseIdleConnections()
	stacktest.Eventually(t, 5*time.Second, "no kept-alive connection left after Run returned", func() bool {
		return soak.Measure().Pooled == 0
	})
	if len(gw.Logs.Lines("stopped")) != 1 {
		t.Errorf("no \"stopped\" log line:\n%s", gw.Logs.String())
	}
}

// TestUpstreamRestartUnderLoad stops OPA, or the IdP, for a while under a
// steady mix of requests: answers are what they must be before, 503 or what
// they must be while it is down (and for a breaker's open time after), and
// what they must be again after; no goroutine is left behind.
func TestUpstreamRestartUnderLoad(t *testing.T) {
	const (
		down     = 700 * time.Millisecond
		recovery = 2 * time.Second // breaker open time (300ms) plus a margin for a loaded machine
	)
	for _, upstream := range []string{"opa", "idp"} {
		t.Run(upstream, func(t *testing.T) {
			o := startOPA(t)
			idp := stacktest.StartIDP(t, 0)
			env := stacktest.StackEnv(idp, o)
			for k, v := range map[string]string{"OKTA_TIMEOUT": "500ms", "OPA_TIMEOUT": "500ms",
				"OKTA_BREAKER_OPEN_TIMEOUT": "300ms", "OPA_BREAKER_OPEN_TIMEOUT": "300ms", "CACHE_TTL": "500ms"} {
				env[k] = v
			}
			gw := stacktest.StartGateway(t, env)
			tokens := make([]string, 20)
			for i := range tokens {
				tokens[i], _ = idp.Issue(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			var mu sync.Mutex
			type answer struct {
				kind   soak.Kind
				status int
				err    error
				at     time.Time
			}
			var answers []answer
			d := &soak.Driver{Traffic: gw.Traffic, Workers: 8, Pool: soak.NewPool(tokens), Client: client,
				OnAnswer: func(k soak.Kind, status int, err error, at time.Time) {
					mu.Lock()
					answers = append(answers, answer{k, status, err, at})
					mu.Unlock()
				}}
			load := func(dur time.Duration) *soak.Result {
				ctx, cancel := context.WithTimeout(context.Background(), dur)
				defer cancel()
				return d.Run(ctx)
			}
			if r := load(300 * time.Millisecond); r.Unexpected+r.Errors != 0 {
				t.Fatalf("warm-up: %s", r)
			}
			client.CloseIdleConnections()
			base := soak.Settle(soak.Measure().Other())

			var downAt, upAt time.Time
			done := make(chan *soak.Result)
			go func() { done <- load(300*time.Millisecond + down + recovery + 700*time.Millisecond) }()
			time.Sleep(300 * time.Millisecond) // load before the fault
			downAt = time.Now()
			switch upstream {
			case "opa":
				o.Stop()
				time.Sleep(down) // the outage
				o.Restart(t)
			case "idp":
				idp.Restart(t, func() { time.Sleep(down) })
			}
			upAt = time.Now()
			res := <-done
			client.CloseIdleConnections()
			end := soak.Settle(base.Other())
			t.Logf("%s down %s: %s", upstream, upAt.Sub(downAt).Round(time.Millisecond), res)

			var during503, after int
			for _, a := range answers {
				switch {
				case a.err != nil:
					t.Errorf("transport error at %s: %v", a.at.Sub(downAt), a.err)
				case a.status == soak.Expected[a.kind]:
				case a.status == 503 && !a.at.Before(downAt) && a.at.Before(upAt.Add(recovery)):
					during503++
				default:
					t.Errorf("%s request at %s (down at 0, up at %s): status %d, want %d",
						a.kind, a.at.Sub(downAt).Round(time.Millisecond), upAt.Sub(downAt).Round(time.Millisecond), a.status, soak.Expected[a.kind])
				}
				if a.at.After(upAt.Add(recovery)) {
					after++
				}
			}
			if during503 == 0 {
				t.Errorf("no 503 while %s was down: the fault was not seen", upstream)
			}
			if after == 0 {
				t.Errorf("no request after recovery")
			}
			if end.Other() > base.Other()+2 {
				t.Errorf("goroutines: %d (%d pooled) after, baseline %d (%d pooled)\n%s",
					end.Goroutines, end.Pooled, base.Goroutines, base.Pooled, soak.GoroutineDump())
			}
			t.Logf("goroutines: baseline %d (%d pooled), after %d (%d pooled)", base.Goroutines, base.Pooled, end.Goroutines, end.Pooled)
		})
	}
}
