package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// pairTarget is one side of the paired unsaturated comparison.
type pairTarget struct {
	name, url, token string
}

// runPaired loads every target at the same time with the same paced load:
// for each target, workers goroutines sending qps requests a second each,
// perWorker requests in all. Sequential hey runs meet the shared machine
// seconds apart, and their p50s wander by a few tenths of a millisecond,
// the size of the difference being measured; run side by side, every target
// meets the same drift.
func runPaired(ctx context.Context, targets []pairTarget, workers, qps, perWorker int) ([]result, error) {
	lat := make([][]time.Duration, len(targets))
	rs := make([]result, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for k, t := range targets {
		rs[k] = result{name: t.name, requests: workers * perWorker, concurrency: workers, statuses: map[int]int{}, introspections: -1}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}, Timeout: 10 * time.Second}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Stagger the workers over one period, alternating targets,
				// so that their requests do not leave in bursts.
				period := time.Second / time.Duration(qps)
				offset := period * time.Duration(w*len(targets)+k) / time.Duration(workers*len(targets))
				tick := time.NewTicker(period)
				defer tick.Stop()
				select {
				case <-time.After(offset):
				case <-ctx.Done():
					return
				}
				for range perWorker {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
					if t.token != "" {
						req.Header.Set("Authorization", "Bearer "+t.token)
					}
					t0 := time.Now()
					resp, err := client.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					d := time.Since(t0)
					mu.Lock()
					if err != nil {
						rs[k].errors++
					} else {
						rs[k].statuses[resp.StatusCode]++
						lat[k] = append(lat[k], d)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for k := range rs {
		l := lat[k]
		if len(l) == 0 {
			return nil, fmt.Errorf("%s: no request succeeded", rs[k].name)
		}
		slices.Sort(l)
		rs[k].rps = float64(len(l)) / elapsed.Seconds()
		rs[k].p50 = l[len(l)*50/100].Seconds()
		rs[k].p99 = l[len(l)*99/100].Seconds()
	}
	return rs, nil
}
