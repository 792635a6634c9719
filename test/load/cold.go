package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// runCold fetches n distinct tokens with fetch and sends each fanout concurrent first
// requests, a wave of tokens at a time, so that coalescing is visible: the
// introspection calls must equal n. The requests of one token are spread
// over targets (several replicas: the fleet scenario).
func runCold(ctx context.Context, name string, targets []string, fetch func(context.Context, string) (string, error), n, fanout int) (result, error) {
	tokens := make([]string, n)
	for i := range tokens {
		t, err := fetch(ctx, "read_sayhello")
		if err != nil {
			return result{}, err
		}
		tokens[i] = t
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}
	const wave = 20
	r := result{name: name, requests: n * fanout, concurrency: wave * fanout, statuses: map[int]int{}}
	var mu sync.Mutex
	var latencies []time.Duration
	start := time.Now()
	for w := 0; w < n; w += wave {
		var wg sync.WaitGroup
		for k, tok := range tokens[w:min(w+wave, n)] {
			for f := range fanout {
				target := targets[(k+f)%len(targets)]
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					t0 := time.Now()
					resp, err := client.Do(req)
					d := time.Since(t0)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						r.errors++
						return
					}
					resp.Body.Close()
					r.statuses[resp.StatusCode]++
					latencies = append(latencies, d)
				}()
			}
		}
		wg.Wait()
	}
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
