package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	defaults := options{
		addr:       "127.0.0.1:9000",
		issuerPath: "/oauth2/default",
		clients:    defaultClients,
		tokenTTL:   time.Hour,
	}
	allEnv := map[string]string{
		"DEVIDP_ADDR":        ":0",
		"DEVIDP_ISSUER_PATH": "/oauth2/test",
		"DEVIDP_CLIENTS":     "a:b:c",
		"DEVIDP_TOKEN_TTL":   "5m",
		"DEVIDP_LATENCY":     "50ms",
		"DEVIDP_RATE_LIMIT":  "600",
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{name: "environment", env: allEnv, want: options{
			addr: ":0", issuerPath: "/oauth2/test", clients: "a:b:c", tokenTTL: 5 * time.Minute, latency: 50 * time.Millisecond, rateLimit: 600,
		}},
		{name: "flags win over environment", env: allEnv,
			args: []string{"-addr", "127.0.0.1:0", "-issuer-path", "", "-clients", "x:y", "-token-ttl", "1s", "-latency", "0", "-rate-limit", "0"},
			want: options{addr: "127.0.0.1:0", clients: "x:y", tokenTTL: time.Second},
		},
		{name: "bad environment value", env: map[string]string{"DEVIDP_TOKEN_TTL": "soon", "DEVIDP_RATE_LIMIT": "many"},
			wantErr: "DEVIDP_RATE_LIMIT=\"many\": parse error\nDEVIDP_TOKEN_TTL=\"soon\": parse error"},
		{name: "bad environment value overridden by a flag", env: map[string]string{"DEVIDP_LATENCY": "slow"}, args: []string{"-latency", "1ms"},
			want: options{addr: defaults.addr, issuerPath: defaults.issuerPath, clients: defaultClients, tokenTTL: time.Hour, latency: time.Millisecond}},
		{name: "bad flag", args: []string{"-rate-limit", "x"}, wantErr: `invalid value "x" for flag -rate-limit: parse error`},
		{name: "extra argument", args: []string{"serve"}, wantErr: `unexpected arguments ["serve"]`},
		{name: "relative issuer path", args: []string{"-issuer-path", "oauth2/default"}, wantErr: `issuer path "oauth2/default" must start with /`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stderr strings.Builder
	if err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "(env DEVIDP_TOKEN_TTL)") {
		t.Errorf("usage does not name the environment variables:\n%s", stderr.String())
	}
}

func TestRunBadClients(t *testing.T) {
	env := map[string]string{"DEVIDP_CLIENTS": "a:s,a:t"}
	err := run(t.Context(), []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if want := `clients: client 2: duplicate id "a"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	env := map[string]string{"DEVIDP_ISSUER_PATH": "/oauth2/test"}
	stderr, stderrW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, stderrW)
		stderrW.Close()
		done <- err
	}()

	// The listener is bound before the banner is printed, so once the issuer
	// is known the server answers.
	var banner []string
	var issuer string
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		banner = append(banner, lines.Text())
		if _, after, ok := strings.Cut(lines.Text(), "not for production; issuer "); ok {
			issuer = after
		}
		if strings.Contains(lines.Text(), "curl") {
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if issuer == "" {
		t.Fatalf("no issuer in %q (run: %v)", banner, <-done)
	}
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") || !strings.HasSuffix(issuer, "/oauth2/test") || strings.HasSuffix(issuer, ":0/oauth2/test") {
		t.Errorf("issuer %q, want http://127.0.0.1:<port>/oauth2/test", issuer)
	}
	out := strings.Join(banner, "\n")
	for _, secret := range []string{"authgate-dev-secret", "demo-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("banner reveals a secret:\n%s", out)
		}
	}
	for _, want := range []string{"client authgate scopes: (none)", "client demo scopes: read_sayhello read_saysecret", "curl -s -u 'demo:<secret>'"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}

	postForm := func(path, id, secret string, form url.Values) map[string]any {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, %v, %v", path, resp.StatusCode, m, err)
		}
		return m
	}
	tok := postForm("/v1/token", "demo", "demo-secret", url.Values{"grant_type": {"client_credentials"}})
	access, _ := tok["access_token"].(string)
	got := postForm("/v1/introspect", "authgate", "authgate-dev-secret", url.Values{"token": {access}})
	if got["active"] != true || got["iss"] != issuer || got["client_id"] != "demo" {
		t.Errorf("introspection %v", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
