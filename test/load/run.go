package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	bin                    string
	requests, concurrency  int
	coldTokens, coldFanout int
	idpLatency             time.Duration
	only                   string // "fleet": the fleet scenarios alone
}

// Addresses of the default local stack (make run) and of what this command
// starts beside it.
const (
	opaAddr       = "127.0.0.1:8181"
	idpAddr       = "127.0.0.1:9000"
	trafficAddr   = "127.0.0.1:8086"
	adminAddr     = "127.0.0.1:9086"
	metricsAddr   = "127.0.0.1:9090"
	dcTrafficAddr = "127.0.0.1:8087" // authgate with the decision cache on
	dcAdminAddr   = "127.0.0.1:9087"
	dcMetricsAddr = "127.0.0.1:9091"
	jwtTraffic    = "127.0.0.1:8088" // authgate with TOKEN_VALIDATION=hybrid
	jwtAdmin      = "127.0.0.1:9088"
	jwtMetrics    = "127.0.0.1:9092"
	minihopAddr   = "127.0.0.1:8090"
	bareAddr      = "127.0.0.1:8091"
	decisionPath  = "/v1/data/demoapi/authz/allow"
	issuerPath    = "/oauth2/default"
)

func run(ctx context.Context, o options, out io.Writer) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "authgate-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var procs procs
	defer func() { procs.stopAll() }() // the processes started from here on

	env := []string{"ENV_FILE=.env.example"}
	if ready("http://" + adminAddr + "/readyz") {
		fmt.Fprintln(out, "using the stack already running on", trafficAddr)
	} else {
		fmt.Fprintln(out, "starting the local stack (OPA, devidp with", o.idpLatency, "latency, authgate)")
		if err := procs.start(ctx, work, "opa", bin+"/opa", []string{"run", "--server", "--addr", opaAddr, "--log-level", "error", "opa-policies"}, nil); err != nil {
			return err
		}
		if err := procs.start(ctx, work, "devidp", bin+"/devidp", []string{"-addr", idpAddr, "-latency", o.idpLatency.String()}, nil); err != nil {
			return err
		}
		if err := waitReady(ctx, "http://"+opaAddr+"/health", "http://"+idpAddr+issuerPath+"/.well-known/oauth-authorization-server"); err != nil {
			return err
		}
		if err := procs.start(ctx, work, "authgate", bin+"/authgate", nil, env); err != nil {
			return err
		}
	}
	if o.only == "fleet" {
		fleet, err := runFleet(ctx, o, bin, work, &procs, env, out)
		if err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		printTable(out, fleet)
		return nil
	}
	dcEnv := append(env, "LISTEN_ADDR="+dcTrafficAddr, "ADMIN_ADDR="+dcAdminAddr, "METRICS_ADDR="+dcMetricsAddr, "DECISION_CACHE_TTL=30s")
	if err := procs.start(ctx, work, "authgate-decision-cache", bin+"/authgate", nil, dcEnv); err != nil {
		return err
	}
	jwtEnv := append(env, "LISTEN_ADDR="+jwtTraffic, "ADMIN_ADDR="+jwtAdmin, "METRICS_ADDR="+jwtMetrics, "TOKEN_VALIDATION=hybrid", "OKTA_AUDIENCE=api://default")
	if err := procs.start(ctx, work, "authgate-jwt", bin+"/authgate", nil, jwtEnv); err != nil {
		return err
	}
	if err := waitReady(ctx, "http://"+adminAddr+"/readyz", "http://"+dcAdminAddr+"/readyz", "http://"+jwtAdmin+"/readyz"); err != nil {
		return err
	}

	token, err := fetchToken(ctx, "read_sayhello")
	if err != nil {
		return err
	}
	jwt, err := fetchJWT(ctx, "read_sayhello")
	if err != nil {
		return err
	}
	input, err := opaInput(ctx, token)
	if err != nil {
		return err
	}
	inputFile := filepath.Join(work, "input.json")
	if err := os.WriteFile(inputFile, input, 0o600); err != nil {
		return err
	}
	if err := procs.start(ctx, work, "minihop", bin+"/minihop", []string{"-addr", minihopAddr, "-opa", "http://" + opaAddr + decisionPath, "-input", inputFile}, nil); err != nil {
		return err
	}
	if err := procs.start(ctx, work, "bare", bin+"/bare", []string{"-addr", bareAddr}, nil); err != nil {
		return err
	}
	if err := waitReady(ctx, "http://"+minihopAddr+"/", "http://"+bareAddr+"/sayhello"); err != nil {
		return err
	}

	h := hey{bin: bin + "/hey"}
	auth := "Authorization: Bearer " + token
	n, c := o.requests, o.concurrency
	unsat := []string{"-n", "3000", "-c", "10", "-q", "100"} // 10 workers x 100 req/s, 3 s
	scenarios := []scenario{
		{name: "opa-direct", args: []string{"-n", itoa(n), "-c", itoa(c), "-m", "POST", "-T", "application/json", "-D", inputFile, "http://" + opaAddr + decisionPath}},
		{name: "minimal-hop", args: []string{"-n", itoa(n), "-c", itoa(c), "http://" + minihopAddr + "/"}},
		{name: "bare", args: []string{"-n", itoa(n), "-c", itoa(c), "http://" + bareAddr + "/sayhello"}},
		{name: "hot", introspect: true, args: []string{"-n", itoa(n), "-c", itoa(c), "-H", auth, "http://" + trafficAddr + "/sayhello"}},
		{name: "hot+decision-cache", args: []string{"-n", itoa(n), "-c", itoa(c), "-H", auth, "http://" + dcTrafficAddr + "/sayhello"}},
		{name: "deny", introspect: true, args: []string{"-n", itoa(n), "-c", itoa(c), "-H", auth, "http://" + trafficAddr + "/saysecret"}},
		{name: "no-token", introspect: true, args: []string{"-n", itoa(n), "-c", itoa(c), "http://" + trafficAddr + "/sayhello"}},
		{name: "bad-token", introspect: true, args: []string{"-n", itoa(n), "-c", itoa(c), "-H", "Authorization: Bearer bm90LWEtdG9rZW4", "http://" + trafficAddr + "/sayhello"}},
		{name: "hot-jwt", introspect: true, metrics: jwtMetrics, args: []string{"-n", itoa(n), "-c", itoa(c), "-H", "Authorization: Bearer " + jwt, "http://" + jwtTraffic + "/sayhello"}},
	}
	// The unsaturated pair compares latencies a fraction of a millisecond
	// apart on a shared machine: with hey, run them alternately, three times,
	// and keep the median; then side by side (runPaired), which the verdict
	// reads.
	for range 3 {
		scenarios = append(scenarios,
			scenario{name: "minimal-hop unsat", args: append(unsat, "http://"+minihopAddr+"/")},
			scenario{name: "hot unsat", introspect: true, args: append(unsat, "-H", auth, "http://"+trafficAddr+"/sayhello")})
	}
	runs := map[string][]result{}
	var order []string
	for _, s := range scenarios {
		metrics := cmp.Or(s.metrics, metricsAddr)
		before := introspectionsAt(ctx, metrics)
		r, err := h.run(ctx, s.args)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		r.name = s.name
		r.introspections = -1
		if s.introspect {
			r.introspections = delta(before, introspectionsAt(ctx, metrics))
		}
		if runs[s.name] == nil {
			order = append(order, s.name)
		}
		runs[s.name] = append(runs[s.name], r)
		fmt.Fprintf(out, "  %-20s %8.0f req/s\n", s.name, r.rps)
	}
	var results []result
	for _, name := range order {
		results = append(results, median(runs[name]))
	}
	before := introspections(ctx)
	// Three paired rounds, medians kept, like the hey pair.
	pairedRuns := map[string][]result{}
	for range 3 {
		rs, err := runPaired(ctx, []pairTarget{
			{name: "minimal-hop paired", url: "http://" + minihopAddr + "/"},
			{name: "hot paired", url: "http://" + trafficAddr + "/sayhello", token: token},
		}, 10, 100, 300)
		if err != nil {
			return fmt.Errorf("paired: %w", err)
		}
		for _, r := range rs {
			pairedRuns[r.name] = append(pairedRuns[r.name], r)
		}
	}
	paired := []result{median(pairedRuns["minimal-hop paired"]), median(pairedRuns["hot paired"])}
	paired[1].introspections = delta(before, introspections(ctx))
	results = append(results, paired...)
	before = introspections(ctx)
	cold, err := runCold(ctx, "cold", []string{"http://" + trafficAddr + "/sayhello"}, fetchToken, o.coldTokens, o.coldFanout)
	if err != nil {
		return fmt.Errorf("cold: %w", err)
	}
	cold.introspections = delta(before, introspections(ctx))
	results = append(results, cold)
	// cold-jwt: first sight of as many distinct JWTs, each a signature
	// check in hybrid mode; none may cost an introspection.
	before = introspectionsAt(ctx, jwtMetrics)
	coldJWT, err := runCold(ctx, "cold-jwt", []string{"http://" + jwtTraffic + "/sayhello"}, fetchJWT, o.coldTokens, o.coldFanout)
	if err != nil {
		return fmt.Errorf("cold-jwt: %w", err)
	}
	coldJWT.introspections = delta(before, introspectionsAt(ctx, jwtMetrics))
	results = append(results, coldJWT)

	fleet, err := runFleet(ctx, o, bin, work, &procs, env, out) // fleet.go: several replicas on Redis
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	results = append(results, fleet...)

	printTable(out, results)
	return printVerdicts(out, results, o.coldTokens)
}

type scenario struct {
	name       string
	args       []string
	introspect bool   // report authgate's introspection calls
	metrics    string // the metrics address of the authgate under test; "" = metricsAddr
}

// fetchToken gets a token for the demo client of the development
// authorization server (.env.example's stack).
func fetchToken(ctx context.Context, scope string) (string, error) {
	return fetchAccessToken(ctx, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
}

// fetchJWT gets a JWT access token (devidp's token_format=jwt).
func fetchJWT(ctx context.Context, scope string) (string, error) {
	return fetchAccessToken(ctx, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "token_format": {"jwt"}})
}

func fetchAccessToken(ctx context.Context, form url.Values) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+idpAddr+issuerPath+"/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo", "demo-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: status %d", resp.StatusCode)
	}
	return body.AccessToken, nil
}

// opaInput builds the input document authgate sends for hey's GET /sayhello
// with token, so that OPA-direct and the minimal hop ask OPA the same thing.
func opaInput(ctx context.Context, token string) ([]byte, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+idpAddr+issuerPath+"/v1/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("authgate", "authgate-dev-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var claims map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	scope, _ := claims["scope"].(string)
	return json.Marshal(map[string]any{"input": map[string]any{
		"method": "GET", "path": "/sayhello", "api": "/sayhello", "query": map[string]any{},
		"headers": map[string]string{"user-agent": "hey/0.0.1", "content-type": "text/html", "accept-encoding": "gzip"},
		"token":   claims, "scopes": strings.Fields(scope), "subject": claims["sub"], "validation": "introspection",
	}})
}
