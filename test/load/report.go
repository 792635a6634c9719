package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// introspections is authgate's count of introspection calls
// (authgate_introspection_requests_total, all results), or -1 when its
// /metrics does not say.
func introspections(ctx context.Context) int { return introspectionsAt(ctx, metricsAddr) }

// introspectionsAt is introspections for the authgate whose metrics
// listener is metrics.
func introspectionsAt(ctx context.Context, metrics string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metrics+"/metrics", nil)
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	total, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "authgate_introspection_requests_total") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total, found = total+v, true
		}
	}
	if !found {
		return -1
	}
	return int(total)
}

// median merges repeated runs of one scenario: the median run by p50, with
// the median p99 and req/s, and all statuses and introspections added up.
func median(rs []result) result {
	if len(rs) == 1 {
		return rs[0]
	}
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := rs[0]
	m.statuses = map[int]int{}
	m.requests, m.errors, m.introspections = 0, 0, 0
	for _, r := range rs {
		for c, n := range r.statuses {
			m.statuses[c] += n
		}
		m.requests += r.requests
		m.errors += r.errors
		if r.introspections < 0 || m.introspections < 0 {
			m.introspections = -1
		} else {
			m.introspections += r.introspections
		}
	}
	m.p50 = pick(func(r result) float64 { return r.p50 })
	m.p99 = pick(func(r result) float64 { return r.p99 })
	m.rps = pick(func(r result) float64 { return r.rps })
	return m
}

func delta(before, after int) int {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

func itoa(n int) string { return strconv.Itoa(n) }

func printTable(w io.Writer, rs []result) {
	fmt.Fprintf(w, "\n%-20s %9s %5s %10s %9s %9s  %-28s %s\n", "scenario", "requests", "conc", "req/s", "p50 ms", "p99 ms", "statuses", "introspections")
	for _, r := range rs {
		intro := "-"
		if r.introspections >= 0 {
			intro = strconv.Itoa(r.introspections)
		}
		fmt.Fprintf(w, "%-20s %9d %5d %10.0f %9.2f %9.2f  %-28s %s\n", r.name, r.requests, r.concurrency, r.rps, r.p50*1e3, r.p99*1e3, statuses(r), intro)
	}
}

func statuses(r result) string {
	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d:%d", c, r.statuses[c]))
	}
	if r.errors > 0 {
		parts = append(parts, fmt.Sprintf("err:%d", r.errors))
	}
	return strings.Join(parts, " ")
}

// printVerdicts states each target of the performance issue against this
// run's own baselines, and fails on an unexpected status.
func printVerdicts(w io.Writer, rs []result, coldTokens int) error {
	by := map[string]result{}
	for _, r := range rs {
		by[r.name] = r
	}
	hot, hop, opa, bare := by["hot"], by["minimal-hop"], by["opa-direct"], by["bare"]
	hotU, hopU, dc, cold := by["hot paired"], by["minimal-hop paired"], by["hot+decision-cache"], by["cold"]
	heyU, heyHopU := by["hot unsat"], by["minimal-hop unsat"]
	fmt.Fprintln(w)
	check := func(ok bool, format string, a ...any) {
		mark := "ok  "
		if !ok {
			mark = "MISS"
		}
		fmt.Fprintf(w, "%s "+format+"\n", append([]any{mark}, a...)...)
	}
	check(hot.rps >= 0.9*hop.rps, "hot saturated: %.2f x minimal-hop req/s (target >= 0.90); %.2f x OPA-direct", hot.rps/hop.rps, hot.rps/opa.rps)
	check(hotU.p50 <= hopU.p50+0.0002, "hot unsaturated p50 (paired): %.2f ms vs minimal-hop %.2f ms (target <= +0.20 ms)", hotU.p50*1e3, hopU.p50*1e3)
	check(hotU.p99 <= hopU.p99+0.0005, "hot unsaturated p99 (paired): %.2f ms vs minimal-hop %.2f ms (target <= +0.50 ms)", hotU.p99*1e3, hopU.p99*1e3)
	fmt.Fprintf(w, "     (hey, alternated runs, median: p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms)\n", heyU.p50*1e3, heyHopU.p50*1e3, heyU.p99*1e3, heyHopU.p99*1e3)
	check(dc.rps >= 0.5*bare.rps, "hot with decision cache: %.2f x bare req/s (target >= 0.50)", dc.rps/bare.rps)
	check(cold.introspections == coldTokens, "cold: %d introspections for %d distinct tokens", cold.introspections, coldTokens)
	hotJWT, coldJWT := by["hot-jwt"], by["cold-jwt"]
	check(hotJWT.introspections == 0, "hot-jwt: %d introspections (target 0); %.2f x hot req/s", hotJWT.introspections, hotJWT.rps/hot.rps)
	check(coldJWT.introspections == 0, "cold-jwt: %d introspections for %d distinct JWTs (target 0); p50 %.2f ms vs cold %.2f ms",
		coldJWT.introspections, coldTokens, coldJWT.p50*1e3, cold.p50*1e3)

	if fleet, ok := by["fleet"]; ok {
		shared, l1 := by["shared-hit"], by["shared-hit L1"]
		check(fleet.introspections == coldTokens, "fleet: %d introspections for %d distinct tokens over %d replicas", fleet.introspections, coldTokens, fleetReplicas)
		check(shared.p50 <= l1.p50+0.0005, "shared-hit p50: %.2f ms vs L1 hit %.2f ms (target <= +0.50 ms); %d introspections", shared.p50*1e3, l1.p50*1e3, shared.introspections)
	}

	want := map[string]int{"opa-direct": 200, "minimal-hop": 200, "bare": 200, "hot": 200, "hot+decision-cache": 200,
		"deny": 403, "no-token": 401, "bad-token": 401, "minimal-hop unsat": 200, "hot unsat": 200,
		"minimal-hop paired": 200, "hot paired": 200, "cold": 200, "hot-jwt": 200, "cold-jwt": 200,
		"fleet": 200, "shared-hit": 200, "shared-hit L1": 200}
	var bad []string
	for _, r := range rs {
		if r.errors > 0 || len(r.statuses) != 1 || r.statuses[want[r.name]] == 0 {
			bad = append(bad, r.name+" ("+statuses(r)+")")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unexpected statuses in: %s", strings.Join(bad, ", "))
	}
	return nil
}
