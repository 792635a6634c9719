package introspect_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/pkg/introspect"
)

// Markers that must never leak into an error message.
const (
	testToken  = "tok-NEVER-IN-ERRORS-7f3a"
	testSecret = "sec-NEVER-IN-ERRORS-91c2"
)

// serve starts an httptest.Server standing in for the authorization server and
// closes it when the test ends.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// stall blocks a handler until the client goes away. The body is read first:
// net/http notices a closed connection, and cancels r.Context(), only once
// the handler has consumed the request body.
func stall(r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

func TestIntrospectRequest(t *testing.T) {
	tests := []struct {
		name       string
		client     introspect.Client // URL and HTTPClient are filled in
		token      string
		wantAuth   string            // exact Authorization header; "" means absent
		wantForm   map[string]string // exact form
		wantHeader map[string]string
	}{
		{
			name:     "basic by default",
			client:   introspect.Client{ClientID: "0oa1", ClientSecret: "s3cr3t"},
			token:    "eyJ.abc.def",
			wantAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("0oa1:s3cr3t")),
			wantForm: map[string]string{"token": "eyJ.abc.def", "token_type_hint": "access_token"},
		},
		{
			// RFC 6749 2.3.1: id and secret are form-urlencoded before
			// base64, so a ':' in the id cannot be confused with the separator.
			name:     "basic url-encodes id and secret",
			client:   introspect.Client{ClientID: "client:id %1", ClientSecret: "p@ss:w%rd +/x", AuthMethod: introspect.ClientSecretBasic},
			token:    "a+b/c=d e&f",
			wantAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("client%3Aid+%251:p%40ss%3Aw%25rd+%2B%2Fx")),
			wantForm: map[string]string{"token": "a+b/c=d e&f", "token_type_hint": "access_token"},
		},
		{
			name:     "post puts credentials in the form only",
			client:   introspect.Client{ClientID: "client:id %1", ClientSecret: "p@ss:w%rd +/x", AuthMethod: introspect.ClientSecretPost},
			token:    "opaque-token",
			wantAuth: "",
			wantForm: map[string]string{
				"token": "opaque-token", "token_type_hint": "access_token",
				"client_id": "client:id %1", "client_secret": "p@ss:w%rd +/x",
			},
		},
		{
			name: "custom hint and extra header",
			client: introspect.Client{
				ClientID: "0oa1", ClientSecret: "s3cr3t", TokenTypeHint: "refresh_token",
				Header: http.Header{"X-Request-Id": {"req-1"}},
			},
			token:      "rt",
			wantAuth:   "Basic " + base64.StdEncoding.EncodeToString([]byte("0oa1:s3cr3t")),
			wantForm:   map[string]string{"token": "rt", "token_type_hint": "refresh_token"},
			wantHeader: map[string]string{"X-Request-Id": "req-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil {
					t.Errorf("ParseForm: %v", err)
				}
				got = r
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"active":false}`)
			})
			c := tt.client
			c.URL = srv.URL + "/oauth2/default/v1/introspect"
			c.HTTPClient = srv.Client()
			if _, err := c.Introspect(context.Background(), tt.token); err != nil {
				t.Fatalf("Introspect: %v", err)
			}
			if got == nil {
				t.Fatal("server saw no request")
			}
			if got.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", got.Method)
			}
			if got.URL.Path != "/oauth2/default/v1/introspect" {
				t.Errorf("path = %s", got.URL.Path)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", ct)
			}
			if a := got.Header.Get("Accept"); a != "application/json" {
				t.Errorf("Accept = %q", a)
			}
			if auth, ok := got.Header["Authorization"]; tt.wantAuth == "" && ok {
				t.Errorf("Authorization = %q, want none", auth)
			} else if tt.wantAuth != "" && got.Header.Get("Authorization") != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got.Header.Get("Authorization"), tt.wantAuth)
			}
			if len(got.URL.Query()) != 0 {
				t.Errorf("query = %q, want none (everything goes in the body)", got.URL.RawQuery)
			}
			form := map[string]string{}
			for k, v := range got.PostForm {
				if len(v) != 1 {
					t.Errorf("form %s = %q, want one value", k, v)
				}
				form[k] = v[0]
			}
			if !reflect.DeepEqual(form, tt.wantForm) {
				t.Errorf("form = %v, want %v", form, tt.wantForm)
			}
			for k, v := range tt.wantHeader {
				if g := got.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestIntrospectAnswer(t *testing.T) {
	noLimit := introspect.RateLimit{Limit: -1, Remaining: -1}
	okta := func(aud, exp string) string {
		return `{
			"active": true,
			"scope": "openid orders:read",
			"username": "alice@example.com",
			"exp": ` + exp + `,
			"iat": 1700000000,
			"nbf": 1700000001,
			"sub": "alice@example.com",
			"aud": ` + aud + `,
			"iss": "https://example.okta.com/oauth2/default",
			"jti": "AT.jti-1",
			"token_type": "Bearer",
			"client_id": "0oa1",
			"uid": "00u1",
			"device_id": "guo1",
			"groups": ["admins", "staff"]
		}`
	}
	alice := func(aud []string, exp int64) introspect.Response {
		return introspect.Response{
			Active: true, Scope: "openid orders:read", ClientID: "0oa1",
			Username: "alice@example.com", TokenType: "Bearer",
			Exp: exp, Iat: 1700000000, Nbf: 1700000001,
			Sub: "alice@example.com", Aud: aud,
			Iss: "https://example.okta.com/oauth2/default", Jti: "AT.jti-1",
			RateLimit: noLimit,
		}
	}
	tests := []struct {
		name    string
		body    string
		header  map[string]string
		want    introspect.Response // Raw is checked separately
		wantRaw map[string]any      // members that must be in Raw
	}{
		{
			name: "okta active, aud string",
			body: okta(`"api://default"`, "1700003600"),
			want: alice([]string{"api://default"}, 1700003600),
			wantRaw: map[string]any{
				"uid": "00u1", "device_id": "guo1", "groups": []any{"admins", "staff"},
			},
		},
		{
			name: "aud array",
			body: okta(`["api://default", "api://other"]`, "1700003600"),
			want: alice([]string{"api://default", "api://other"}, 1700003600),
		},
		{
			name: "exp with a fraction",
			body: okta(`"api://default"`, "1700003600.75"),
			want: alice([]string{"api://default"}, 1700003600),
		},
		{
			name: "exp in exponent form",
			body: okta(`"api://default"`, "1.7000036e9"),
			want: alice([]string{"api://default"}, 1700003600),
		},
		{
			name: "rate limit headers",
			body: `{"active":true,"sub":"bob"}`,
			header: map[string]string{
				"X-Rate-Limit-Limit": "1200", "X-Rate-Limit-Remaining": "1199", "X-Rate-Limit-Reset": "1700000060",
			},
			want: introspect.Response{
				Active: true, Sub: "bob",
				RateLimit: introspect.RateLimit{Limit: 1200, Remaining: 1199, Reset: time.Unix(1700000060, 0)},
			},
		},
		{
			name: "inactive is not an error",
			body: `{"active":false}`,
			want: introspect.Response{RateLimit: noLimit},
		},
		{
			// Wrongly typed members are dropped from the typed fields but
			// stay in Raw for the policy.
			name:    "wrong types ignored but kept raw",
			body:    `{"active":true,"scope":42,"exp":"soon","aud":{"x":1},"sub":null}`,
			want:    introspect.Response{Active: true, RateLimit: noLimit, WrongType: []string{"scope", "exp", "aud"}},
			wantRaw: map[string]any{"scope": 42.0, "exp": "soon", "aud": map[string]any{"x": 1.0}},
		},
		{
			// A sub that is not a string is told from an absent one, so
			// that nobody reads it as "no sub, use client_id".
			name: "identity members of the wrong type named",
			body: `{"active":true,"sub":{"id":"admin"},"client_id":7,"username":["u"],"token_type":false,"iat":"x","nbf":[],"iss":1,"jti":{},"aud":[1]}`,
			want: introspect.Response{Active: true, RateLimit: noLimit,
				WrongType: []string{"client_id", "username", "token_type", "iat", "nbf", "sub", "aud", "iss", "jti"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.body)
			})
			c := &introspect.Client{URL: srv.URL, ClientID: "0oa1", ClientSecret: testSecret, HTTPClient: srv.Client()}
			got, err := c.Introspect(context.Background(), testToken)
			if err != nil {
				t.Fatalf("Introspect: %v", err)
			}
			raw := got.Raw
			if !json.Valid(raw) || strings.ContainsAny(string(raw), "\n\t") {
				t.Errorf("Raw = %q, want compact JSON", raw)
			}
			var gotRaw, sent map[string]any
			if err := json.Unmarshal(raw, &gotRaw); err != nil {
				t.Fatalf("Raw: %v", err)
			}
			if err := json.Unmarshal([]byte(tt.body), &sent); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotRaw, sent) {
				t.Errorf("Raw = %v, want everything sent: %v", gotRaw, sent)
			}
			for k, v := range tt.wantRaw {
				if !reflect.DeepEqual(gotRaw[k], v) {
					t.Errorf("Raw[%q] = %#v, want %#v", k, gotRaw[k], v)
				}
			}
			got.Raw = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Introspect =\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

func TestIntrospectErrors(t *testing.T) {
	jsonAnswer := func(status int, body string, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	noLimit := introspect.RateLimit{Limit: -1, Remaining: -1}
	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: the server is closed before the call
		max     int64
		timeout time.Duration

		wantStatus      int
		wantCode        string
		wantDescription string
		wantRateLimit   *introspect.RateLimit // nil: not checked
		// wantRetryAfter is the expected RetryAfter given the time just
		// before and just after the call; nil means zero.
		wantRetryAfter func(before, after time.Time) (lo, hi time.Time)
		wantMsg        string // exact Error(), unless wantPrefix
		wantPrefix     bool
		wantIs         error
	}{
		{
			name:            "401 invalid_client",
			handler:         jsonAnswer(401, `{"error":"invalid_client","error_description":"Client authentication failed. Either the client or the client credentials are invalid."}`),
			wantStatus:      401,
			wantCode:        "invalid_client",
			wantDescription: "Client authentication failed. Either the client or the client credentials are invalid.",
			wantRateLimit:   &noLimit,
			wantMsg:         "introspect: status 401 invalid_client: Client authentication failed. Either the client or the client credentials are invalid.",
		},
		{
			name:            "400 invalid_request",
			handler:         jsonAnswer(400, `{"error":"invalid_request","error_description":"The token parameter is required."}`),
			wantStatus:      400,
			wantCode:        "invalid_request",
			wantDescription: "The token parameter is required.",
			wantMsg:         "introspect: status 400 invalid_request: The token parameter is required.",
		},
		{
			name:            "400 description with control and non-ASCII characters",
			handler:         jsonAnswer(400, `{"error":"invalid_request\n","error_description":"line1\nline2\u001b[31m é"}`),
			wantStatus:      400,
			wantCode:        "invalid_request",
			wantDescription: "line1line2[31m ",
			wantMsg:         "introspect: status 400 invalid_request: line1line2[31m ",
		},
		{
			name: "429 with X-Rate-Limit-Reset",
			handler: jsonAnswer(429, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorLink":"E0000047","errorId":"oae1","errorCauses":[]}`,
				"X-Rate-Limit-Limit", "600", "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", "1700000060"),
			wantStatus:      429,
			wantCode:        "E0000047",
			wantDescription: "API call exceeded rate limit due to too many requests.",
			wantRateLimit:   &introspect.RateLimit{Limit: 600, Remaining: 0, Reset: time.Unix(1700000060, 0)},
			wantRetryAfter: func(time.Time, time.Time) (time.Time, time.Time) {
				return time.Unix(1700000060, 0), time.Unix(1700000060, 0)
			},
			wantMsg: "introspect: status 429 E0000047: API call exceeded rate limit due to too many requests.",
		},
		{
			name:          "429 with Retry-After seconds",
			handler:       jsonAnswer(429, `{"error":"too_many_requests"}`, "Retry-After", "7"),
			wantStatus:    429,
			wantCode:      "too_many_requests",
			wantRateLimit: &noLimit,
			wantRetryAfter: func(before, after time.Time) (time.Time, time.Time) {
				return before.Add(7 * time.Second), after.Add(7 * time.Second)
			},
			wantMsg: "introspect: status 429 too_many_requests",
		},
		{
			name: "429 Retry-After wins over X-Rate-Limit-Reset",
			handler: jsonAnswer(429, ``, "Retry-After", "3",
				"X-Rate-Limit-Limit", "600", "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", "1700000060"),
			wantStatus: 429,
			wantRetryAfter: func(before, after time.Time) (time.Time, time.Time) {
				return before.Add(3 * time.Second), after.Add(3 * time.Second)
			},
			wantMsg: "introspect: status 429",
		},
		{
			name:       "500 plain text",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
			wantStatus: 500,
			wantMsg:    "introspect: status 500",
		},
		{
			name:       "503 with Retry-After date",
			handler:    jsonAnswer(503, `{"errorCode":"E0000009","errorSummary":"Internal Server Error"}`, "Retry-After", "Wed, 15 Nov 2023 22:14:20 GMT"),
			wantStatus: 503,
			wantCode:   "E0000009", wantDescription: "Internal Server Error",
			wantRetryAfter: func(time.Time, time.Time) (time.Time, time.Time) {
				d := time.Date(2023, 11, 15, 22, 14, 20, 0, time.UTC)
				return d, d
			},
			wantMsg: "introspect: status 503 E0000009: Internal Server Error",
		},
		{
			name:       "200 garbage",
			handler:    jsonAnswer(200, `<html>Sign in</html>`),
			wantStatus: 200,
			wantMsg:    "introspect: status 200: answer is not a JSON object",
		},
		{
			name:       "200 truncated JSON",
			handler:    jsonAnswer(200, `{"active":true,"sub":"al`),
			wantStatus: 200,
			wantMsg:    "introspect: status 200: answer is not a JSON object",
		},
		{
			name:       "200 empty body",
			handler:    jsonAnswer(200, ``),
			wantStatus: 200,
			wantMsg:    "introspect: status 200: answer is not a JSON object",
		},
		{
			name:       "200 array",
			handler:    jsonAnswer(200, `[{"active":true}]`),
			wantStatus: 200,
			wantMsg:    "introspect: status 200: answer is not a JSON object",
		},
		{
			name:       "active missing",
			handler:    jsonAnswer(200, `{"sub":"alice"}`),
			wantStatus: 200,
			wantMsg:    `introspect: status 200: answer lacks a boolean "active" member`,
		},
		{
			name:       "active null",
			handler:    jsonAnswer(200, `{"active":null}`),
			wantStatus: 200,
			wantMsg:    `introspect: status 200: answer lacks a boolean "active" member`,
		},
		{
			name:       "active is a string",
			handler:    jsonAnswer(200, `{"active":"true"}`),
			wantStatus: 200,
			wantMsg:    `introspect: status 200: answer lacks a boolean "active" member`,
		},
		{
			name:       "active is a number",
			handler:    jsonAnswer(200, `{"active":1}`),
			wantStatus: 200,
			wantMsg:    `introspect: status 200: answer lacks a boolean "active" member`,
		},
		{
			name:          "body one byte over MaxResponseBytes",
			handler:       jsonAnswer(200, `{"active":true,"sub":"`+strings.Repeat("a", 64-24)+`"}`, "X-Rate-Limit-Limit", "5"),
			max:           64 - 1,
			wantStatus:    200,
			wantRateLimit: &introspect.RateLimit{Limit: 5, Remaining: -1},
			wantMsg:       "introspect: status 200: answer larger than 63 bytes",
		},
		{
			name:       "error body over MaxResponseBytes",
			handler:    jsonAnswer(500, strings.Repeat(" ", introspect.DefaultMaxResponseBytes+1)),
			wantStatus: 500,
			wantMsg:    "introspect: status 500: answer larger than 65536 bytes",
		},
		{
			name:       "connection refused",
			handler:    nil,
			wantMsg:    "introspect: post: dial tcp ",
			wantPrefix: true,
			wantIs:     syscall.ECONNREFUSED,
		},
		{
			name: "connection closed mid-body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Errorf("Hijack: %v", err)
					return
				}
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"active\":tr")
				buf.Flush()
				conn.Close()
			},
			wantStatus: 200,
			wantMsg:    "introspect: status 200: reading body: unexpected EOF",
			wantIs:     io.ErrUnexpectedEOF,
		},
		{
			name: "slow headers vs context deadline",
			handler: func(w http.ResponseWriter, r *http.Request) {
				stall(r)
			},
			timeout: 50 * time.Millisecond,
			wantMsg: "introspect: post: context deadline exceeded",
			wantIs:  context.DeadlineExceeded,
		},
		{
			name: "slow body vs context deadline",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"active":`)
				w.(http.Flusher).Flush()
				stall(r)
			},
			timeout:    50 * time.Millisecond,
			wantStatus: 200,
			wantMsg:    "introspect: status 200: reading body: context deadline exceeded",
			wantIs:     context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = func(http.ResponseWriter, *http.Request) { t.Error("closed server was called") }
			}
			srv := serve(t, h)
			// The endpoint carries a secret in its query, as an operator
			// might configure it: transport errors must not repeat it.
			c := &introspect.Client{
				URL:              srv.URL + "/v1/introspect?key=" + testSecret,
				ClientID:         "0oa1",
				ClientSecret:     testSecret,
				HTTPClient:       srv.Client(),
				MaxResponseBytes: tt.max,
			}
			if tt.handler == nil {
				srv.Close()
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			before := time.Now()
			got, err := c.Introspect(ctx, testToken)
			after := time.Now()
			if err == nil {
				t.Fatalf("Introspect = %+v, want error", got)
			}
			if got != nil {
				t.Errorf("Introspect returned %+v with the error", got)
			}
			var ie *introspect.Error
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not *introspect.Error", err, err)
			}
			msg := err.Error()
			for _, s := range []string{testToken, testSecret} {
				if strings.Contains(msg, s) {
					t.Errorf("Error() = %q contains %q", msg, s)
				}
			}
			if tt.wantPrefix {
				if !strings.HasPrefix(msg, tt.wantMsg) {
					t.Errorf("Error() = %q, want prefix %q", msg, tt.wantMsg)
				}
			} else if msg != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", msg, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if ie.StatusCode != tt.wantStatus || ie.Code != tt.wantCode || ie.Description != tt.wantDescription {
				t.Errorf("StatusCode, Code, Description = %d, %q, %q; want %d, %q, %q",
					ie.StatusCode, ie.Code, ie.Description, tt.wantStatus, tt.wantCode, tt.wantDescription)
			}
			if tt.wantRateLimit != nil && !reflect.DeepEqual(ie.RateLimit, *tt.wantRateLimit) {
				t.Errorf("RateLimit = %+v, want %+v", ie.RateLimit, *tt.wantRateLimit)
			}
			if tt.wantRetryAfter == nil {
				if !ie.RetryAfter.IsZero() {
					t.Errorf("RetryAfter = %v, want zero", ie.RetryAfter)
				}
			} else {
				// Retry-After has one-second resolution: allow for the
				// truncation of the clock readings around the call.
				lo, hi := tt.wantRetryAfter(before, after)
				if ie.RetryAfter.Before(lo.Add(-time.Second)) || ie.RetryAfter.After(hi) {
					t.Errorf("RetryAfter = %v, want in [%v, %v]", ie.RetryAfter, lo, hi)
				}
			}
		})
	}
}

func TestIntrospectBoundary(t *testing.T) {
	// A body of exactly MaxResponseBytes is accepted.
	body := `{"active":true,"sub":"` + strings.Repeat("a", 64-24) + `"}`
	if len(body) != 64 {
		t.Fatalf("len(body) = %d", len(body))
	}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	c := &introspect.Client{URL: srv.URL, ClientID: "id", ClientSecret: "s", HTTPClient: srv.Client(), MaxResponseBytes: 64}
	r, err := c.Introspect(context.Background(), "t")
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	if !r.Active {
		t.Errorf("Active = false")
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  introspect.Error
		want string
	}{
		{introspect.Error{Err: errors.New("post: boom")}, "introspect: post: boom"},
		{introspect.Error{StatusCode: 502}, "introspect: status 502"},
		{introspect.Error{StatusCode: 401, Code: "invalid_client"}, "introspect: status 401 invalid_client"},
		{introspect.Error{StatusCode: 401, Code: "invalid_client", Description: "bad"}, "introspect: status 401 invalid_client: bad"},
		{introspect.Error{StatusCode: 200, Err: errors.New("x")}, "introspect: status 200: x"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// FuzzParse checks that Parse never panics and, when it accepts a body,
// reports the member named exactly "active" (case matters: encoding/json's
// case-insensitive struct matching would let "Active" decide).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"active":true}`,
		`{"active":false}`,
		`{"active":true,"scope":"a b","exp":1700000000.5,"aud":["x","y"],"sub":"s"}`,
		`{"active":"true"}`,
		`{"active":null}`,
		`{"Active":true}`,
		`{"active":true,"active":false}`,
		`[true]`,
		`null`,
		``,
		`{"active":true,"exp":1e400}`,
		`{"active":true} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := introspect.Parse(body)
		var want struct{ Active *bool }
		var m map[string]json.RawMessage
		werr := json.Unmarshal(body, &m)
		if werr == nil && m != nil {
			werr = json.Unmarshal(m["active"], &want.Active)
		}
		accepted := werr == nil && m != nil && want.Active != nil
		if err != nil {
			if r != nil {
				t.Errorf("Parse returned %+v with error %v", r, err)
			}
			if accepted {
				t.Errorf("Parse(%q) = %v, but encoding/json reads active=%v", body, err, *want.Active)
			}
			return
		}
		if !accepted {
			t.Fatalf("Parse(%q) accepted a body encoding/json rejects (err %v, active %v)", body, werr, want.Active)
		}
		if r.Active != *want.Active {
			t.Errorf("Parse(%q).Active = %v, want %v", body, r.Active, *want.Active)
		}
		if !json.Valid(r.Raw) {
			t.Errorf("Parse(%q).Raw = %q is not valid JSON", body, r.Raw)
		}
	})
}
