package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/config"
)

// adminToken is a valid ADMIN_API_TOKEN; no error message may contain it.
const adminToken = "MARKER-admin-api-token-0123456789abcdef"

// fleetKey is a valid FLEET_KEY; no error message may contain it.
const fleetKey = "MARKER-fleet-key-0123456789abcdefghijkl"

func TestLoadFleet(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(*config.Config)
		wantErr []string
	}{
		{
			name: "every variable set",
			env: with("REDIS_URL", "rediss://:pw@redis.internal:6380/2", "REDIS_TIMEOUT", "50ms",
				"REDIS_KEY_PREFIX", "ag1:", "ADMIN_API_TOKEN", adminToken, "REVOKE_UPSTREAM", "true",
				"OKTA_REVOKE_URL", "https://example.okta.com/oauth2/default/v1/revoke",
				"FLEET_KEY", fleetKey, "FLEET_KEY_PREVIOUS", fleetKey+"-old"),
			want: func(c *config.Config) {
				c.RedisURL, c.RedisTimeout, c.RedisKeyPrefix = "rediss://:pw@redis.internal:6380/2", 50*time.Millisecond, "ag1:"
				c.FleetKey, c.FleetKeyPrev = fleetKey, fleetKey+"-old"
				c.AdminAPIToken, c.RevokeUpstream = adminToken, true
				c.OktaRevokeURL = "https://example.okta.com/oauth2/default/v1/revoke"
			},
		},
		{
			name:    "REDIS_URL without FLEET_KEY",
			env:     with("REDIS_URL", "redis://127.0.0.1:6379/0"),
			wantErr: []string{"FLEET_KEY: required when REDIS_URL is set: a random string of at least 32 characters shared by every replica (e.g. openssl rand -base64 48)"},
		},
		{
			name:    "FLEET_KEY too short, unquoted",
			env:     with("REDIS_URL", "redis://127.0.0.1:6379/0", "FLEET_KEY", "MARKER-short"),
			wantErr: []string{"FLEET_KEY: must be at least 32 characters, got 12"},
		},
		{
			name:    "FLEET_KEY_PREVIOUS too short, unquoted",
			env:     with("REDIS_URL", "redis://127.0.0.1:6379/0", "FLEET_KEY", fleetKey, "FLEET_KEY_PREVIOUS", "MARKER-short"),
			wantErr: []string{"FLEET_KEY_PREVIOUS: must be at least 32 characters, got 12"},
		},
		{
			name:    "FLEET_KEY_PREVIOUS alone",
			env:     with("FLEET_KEY_PREVIOUS", fleetKey),
			wantErr: []string{"FLEET_KEY_PREVIOUS: set, but FLEET_KEY is not (FLEET_KEY is the key replicas write with)"},
		},
		{
			name:    "REDIS_URL of another scheme, with its password unquoted",
			env:     with("REDIS_URL", "http://:MARKER-redis-pw@redis:6379", "FLEET_KEY", fleetKey),
			wantErr: []string{`REDIS_URL: must be a redis:// or rediss:// (TLS) URL, got scheme "http"`},
		},
		{
			name:    "REDIS_URL without a host",
			env:     with("REDIS_URL", "redis:///0", "FLEET_KEY", fleetKey),
			wantErr: []string{"REDIS_URL: must name a host, e.g. redis://127.0.0.1:6379/0"},
		},
		{
			name:    "REDIS_URL not a URL",
			env:     with("REDIS_URL", "redis://MARKER-redis-pw@[::1", "FLEET_KEY", fleetKey),
			wantErr: []string{"REDIS_URL: not a URL"},
		},
		{
			name:    "REDIS_TIMEOUT zero",
			env:     with("REDIS_TIMEOUT", "0s"),
			wantErr: []string{"REDIS_TIMEOUT: must be a positive duration, got 0s"},
		},
		{
			name:    "REDIS_KEY_PREFIX with a hash tag",
			env:     with("REDIS_KEY_PREFIX", "{ag}:"),
			wantErr: []string{`REDIS_KEY_PREFIX: must not contain { or } (authgate adds its own hash tags), got "{ag}:"`},
		},
		{
			name:    "ADMIN_API_TOKEN too short",
			env:     with("ADMIN_API_TOKEN", "MARKER-short"),
			wantErr: []string{"ADMIN_API_TOKEN: must be at least 32 characters, got 12"},
		},
		{
			name:    "REVOKE_UPSTREAM without the endpoint",
			env:     with("REVOKE_UPSTREAM", "true"),
			wantErr: []string{"REVOKE_UPSTREAM: true, but ADMIN_API_TOKEN is not set (POST /revoke is off)"},
		},
		{
			name: "jwt mode revokes upstream as a client: credentials required",
			env: with("TOKEN_VALIDATION", "jwt", "OKTA_AUDIENCE", "api://default", "OKTA_CLIENT_ID", "", "OKTA_CLIENT_SECRET", "",
				"ADMIN_API_TOKEN", adminToken, "REVOKE_UPSTREAM", "true"),
			wantErr: []string{"OKTA_CLIENT_ID: required, must not be empty", "OKTA_CLIENT_SECRET: required, must not be empty"},
		},
		{
			name: "jwt mode revoking only here needs no credentials",
			env: with("TOKEN_VALIDATION", "jwt", "OKTA_AUDIENCE", "api://default", "OKTA_CLIENT_ID", "", "OKTA_CLIENT_SECRET", "",
				"ADMIN_API_TOKEN", adminToken, "REDIS_URL", "redis://127.0.0.1:6379/0", "FLEET_KEY", fleetKey),
			want: func(c *config.Config) {
				c.TokenValidation, c.OktaAudience, c.OktaClientID, c.OktaClientSecret = "jwt", "api://default", "", ""
				c.AdminAPIToken, c.RedisURL, c.FleetKey = adminToken, "redis://127.0.0.1:6379/0", fleetKey
			},
		},
		{
			name:    "OKTA_REVOKE_URL in clear to another host",
			env:     with("OKTA_REVOKE_URL", "http://example.okta.com/oauth2/default/v1/revoke"),
			wantErr: []string{"OKTA_REVOKE_URL: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true"},
		},
		{
			name:    "OKTA_REVOKE_URL not http",
			env:     with("OKTA_REVOKE_URL", "ftp://example.okta.com/revoke"),
			wantErr: []string{`OKTA_REVOKE_URL: must be an http or https URL, got scheme "ftp"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			c, err := config.Load(lookup(tt.env))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				for _, s := range []string{"MARKER-redis-pw", "MARKER-short", adminToken, fleetKey} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error leaks a secret: %v", err)
					}
				}
				return
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", *c, want)
			}
			if !c.Shared() {
				t.Error("Shared() false with REDIS_URL set")
			}
		})
	}
}

func TestPlainRedisNonLoopback(t *testing.T) {
	for url, want := range map[string]bool{
		"":                             false,
		"redis://127.0.0.1:6379/0":     false,
		"redis://localhost:6379/0":     false,
		"redis://[::1]:6379/0":         false,
		"rediss://redis.internal:6380": false,
		"redis://redis.internal:6379":  true,
		"redis://10.0.0.5:6379":        true,
		"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=redis.internal:7002": true,
		"redis://127.0.0.1:7000?addr=127.0.0.1:7001":                          false,
	} {
		if got := (&config.Config{RedisURL: url}).PlainRedisNonLoopback(); got != want {
			t.Errorf("%q: %v, want %v", url, got, want)
		}
	}
}
