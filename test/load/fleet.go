package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The fleet scenarios (docs/fleet.md): three authgate
// replicas sharing one redis-server.
const (
	redisAddr     = "127.0.0.1:6390"
	fleetReplicas = 3
)

// replicaAddrs are the traffic, admin and metrics addresses of replica i.
func replicaAddrs(i int) (traffic, admin, metrics string) {
	return "127.0.0.1:" + strconv.Itoa(8095+i), "127.0.0.1:" + strconv.Itoa(9095+i), "127.0.0.1:" + strconv.Itoa(9195+i)
}

// runFleet starts redis-server and the replicas, then runs two scenarios:
// "fleet", cold tokens spread over the replicas (the introspections must
// equal the tokens), and "shared-hit", each token once on a replica whose
// own cache does not have it but Redis does, against "shared-hit L1", the
// same tokens again (now L1 hits). Without redis-server it says so and
// runs nothing.
func runFleet(ctx context.Context, o options, bin, work string, p *procs, env []string, out io.Writer) ([]result, error) {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Fprintln(out, "redis-server not found (apt-get install redis-server): the fleet scenarios are skipped")
		return nil, nil
	}
	if err := p.start(ctx, work, "redis", redisBin, []string{"--port", "6390", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, nil); err != nil {
		return nil, err
	}
	// One prefix and one fleet key for the fleet (the replicas share only
	// what is under it), new each run.
	prefix := "load-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	var kb [32]byte
	rand.Read(kb[:])
	fleetKey := base64.StdEncoding.EncodeToString(kb[:])
	var targets, metrics []string
	for i := range fleetReplicas {
		traffic, admin, m := replicaAddrs(i)
		renv := append(slices.Clone(env), "LISTEN_ADDR="+traffic, "ADMIN_ADDR="+admin, "METRICS_ADDR="+m,
			"REDIS_URL=redis://"+redisAddr+"/0", "REDIS_KEY_PREFIX="+prefix, "FLEET_KEY="+fleetKey)
		if err := p.start(ctx, work, "authgate-replica-"+strconv.Itoa(i), bin+"/authgate", nil, renv); err != nil {
			return nil, err
		}
		if err := waitReady(ctx, "http://"+admin+"/readyz"); err != nil {
			return nil, err
		}
		targets, metrics = append(targets, "http://"+traffic+"/sayhello"), append(metrics, m)
	}
	fleetIntrospections := func() int {
		n := 0
		for _, m := range metrics {
			n += introspectionsAt(ctx, m)
		}
		return n
	}

	before := fleetIntrospections()
	cold, err := runCold(ctx, "fleet", targets, fetchToken, o.coldTokens, o.coldFanout)
	if err != nil {
		return nil, err
	}
	cold.introspections = fleetIntrospections() - before

	// shared-hit: tokens introspected through replica 0, then asked once
	// each of replica 1, whose cache has never seen them.
	const sharedTokens, workers = 1000, 4
	tokens := make([]string, sharedTokens)
	for i := range tokens {
		if tokens[i], err = fetchToken(ctx, "read_sayhello"); err != nil {
			return nil, err
		}
	}
	if _, err := runTokens(ctx, targets[0], tokens, 16); err != nil {
		return nil, err
	}
	before = fleetIntrospections()
	shared, err := runTokens(ctx, targets[1], tokens, workers)
	if err != nil {
		return nil, err
	}
	shared.name, shared.introspections = "shared-hit", fleetIntrospections()-before
	l1, err := runTokens(ctx, targets[1], tokens, workers)
	if err != nil {
		return nil, err
	}
	l1.name, l1.introspections = "shared-hit L1", -1
	return []result{cold, shared, l1}, nil
}

// runTokens sends one request per token to target, workers at a time.
func runTokens(ctx context.Context, target string, tokens []string, workers int) (result, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	r := result{requests: len(tokens), concurrency: workers, statuses: map[int]int{}}
	var mu sync.Mutex
	var latencies []time.Duration
	next := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range next {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					r.errors++
				} else {
					resp.Body.Close()
					r.statuses[resp.StatusCode]++
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	for _, tok := range tokens {
		next <- tok
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		return r, fmt.Errorf("no request succeeded")
	}
	slices.Sort(latencies)
	r.rps = float64(len(latencies)) / elapsed.Seconds()
	r.p50 = latencies[len(latencies)*50/100].Seconds()
	r.p99 = latencies[len(latencies)*99/100].Seconds()
	return r, nil
}
