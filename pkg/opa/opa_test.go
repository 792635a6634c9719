package opa_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/authgate/authgate/pkg/opa"
)

// serve starts an httptest.Server standing in for OPA and closes it when the
// test ends.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestQueryRequest(t *testing.T) {
	for _, body := range []string{
		`{"input":{"method":"GET","path":"/sayhello","scopes":["read_sayhello"]}}`,
		// Sent as is: no re-encoding, whitespace and key order kept.
		"{ \"input\" : {\"b\":1, \"a\":[ ]} }\n",
	} {
		t.Run("", func(t *testing.T) {
			var (
				method, path, ctype string
				got                 []byte
			)
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				method, path, ctype = r.Method, r.URL.Path, r.Header.Get("Content-Type")
				got, _ = io.ReadAll(r.Body)
				io.WriteString(w, `{"result":true}`)
			})
			c := &opa.Client{URL: srv.URL + "/v1/data/demoapi/authz/allow", HTTPClient: srv.Client()}
			if _, err := c.Query(context.Background(), []byte(body)); err != nil {
				t.Fatalf("Query: %v", err)
			}
			if method != http.MethodPost || path != "/v1/data/demoapi/authz/allow" || ctype != "application/json" {
				t.Errorf("request = %s %s Content-Type %q, want POST /v1/data/demoapi/authz/allow application/json", method, path, ctype)
			}
			if string(got) != body {
				t.Errorf("body = %q, want %q", got, body)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	var got []byte
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		io.WriteString(w, `{"result":false}`)
	})
	c := &opa.Client{URL: srv.URL + "/v1/data/x/allow", HTTPClient: srv.Client()}
	input := map[string]any{"method": "GET", "path": "/a", "scopes": []string{"s"}}
	r, err := c.Decide(context.Background(), input)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if !r.Defined || r.Allowed() {
		t.Errorf("Decide = %+v, want defined and not allowed", r)
	}
	if want := `{"input":{"method":"GET","path":"/a","scopes":["s"]}}`; string(got) != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	// Input that cannot be encoded fails before any request.
	_, err = c.Decide(context.Background(), map[string]any{"f": func() {}})
	var oe *opa.Error
	if !errors.As(err, &oe) || oe.StatusCode != 0 || !strings.HasPrefix(err.Error(), "opa: encoding input: ") {
		t.Errorf("Decide(func) error = %v, want opa: encoding input: ...", err)
	}
}

func TestQueryResult(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantDefined bool
		wantAllowed bool
		wantValue   string
		wantID      string
	}{
		{name: "true", body: `{"result":true}`, wantDefined: true, wantAllowed: true, wantValue: `true`},
		{name: "true with newline", body: "{\"result\":true}\n", wantDefined: true, wantAllowed: true, wantValue: `true`},
		{name: "true spaced", body: `{ "result" : true }`, wantDefined: true, wantAllowed: true, wantValue: `true`},
		{name: "false", body: `{"result":false}`, wantDefined: true, wantValue: `false`},
		{name: "undefined", body: `{}`},
		{name: "undefined with decision id", body: `{"decision_id":"d1"}`, wantID: "d1"},
		{name: "null result is undefined", body: `{"result":null}`},
		{name: "object result", body: `{"result":{"allowed":true}}`, wantDefined: true, wantValue: `{"allowed":true}`},
		{name: "string true", body: `{"result":"true"}`, wantDefined: true, wantValue: `"true"`},
		{name: "number 1", body: `{"result":1}`, wantDefined: true, wantValue: `1`},
		{name: "array of true", body: `{"result":[true]}`, wantDefined: true, wantValue: `[true]`},
		{name: "decision id", body: `{"decision_id":"x","result":true}`, wantDefined: true, wantAllowed: true, wantValue: `true`, wantID: "x"},
		{name: "decision id printable only", body: `{"decision_id":"a\nb\u00e9c","result":false}`, wantDefined: true, wantValue: `false`, wantID: "abc"},
		{name: "other members ignored", body: `{"result":true,"metrics":{"timer_rego_query_eval_ns":1},"provenance":{}}`, wantDefined: true, wantAllowed: true, wantValue: `true`},
		// Only the member named exactly "result" counts, although
		// encoding/json matches struct fields case-insensitively.
		{name: "Result is not result", body: `{"Result":true}`},
		{name: "RESULT is not result", body: `{"result":false,"RESULT":true}`, wantDefined: true, wantValue: `false`},
		{name: "long s is not s", body: "{\"re\u017fult\":true}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, answer(200, tt.body))
			c := &opa.Client{URL: srv.URL + "/v1/data/x/allow", HTTPClient: srv.Client()}
			r, err := c.Query(context.Background(), []byte(`{"input":{}}`))
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if r.Defined != tt.wantDefined || r.Allowed() != tt.wantAllowed || string(r.Value) != tt.wantValue || r.DecisionID != tt.wantID {
				t.Errorf("Query = {Defined:%v Allowed:%v Value:%s DecisionID:%q}, want {Defined:%v Allowed:%v Value:%s DecisionID:%q}",
					r.Defined, r.Allowed(), r.Value, r.DecisionID, tt.wantDefined, tt.wantAllowed, tt.wantValue, tt.wantID)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc // nil: the server is closed before the call
		max        int64
		wantStatus int
		wantCode   string
		wantMsg    string // exact Error(), unless wantPrefix
		wantPrefix bool
		wantIs     error
	}{
		{
			name:       "500 internal_error",
			handler:    answer(500, `{"code":"internal_error","message":"1 error occurred: policy.rego:5: eval_conflict_error: functions must not produce multiple outputs for same inputs","errors":[]}`),
			wantStatus: 500,
			wantCode:   "internal_error",
			wantMsg:    "opa: status 500 internal_error: 1 error occurred: policy.rego:5: eval_conflict_error: functions must not produce multiple outputs for same inputs",
		},
		{
			name:       "400 invalid_parameter",
			handler:    answer(400, `{"code":"invalid_parameter","message":"error(s) occurred while decoding input"}`),
			wantStatus: 400,
			wantCode:   "invalid_parameter",
			wantMsg:    "opa: status 400 invalid_parameter: error(s) occurred while decoding input",
		},
		{
			name:       "404 without body",
			handler:    answer(404, ``),
			wantStatus: 404,
			wantMsg:    "opa: status 404",
		},
		{
			name:       "502 html",
			handler:    answer(502, `<html>bad gateway</html>`),
			wantStatus: 502,
			wantMsg:    "opa: status 502",
		},
		{
			name:       "500 with control characters",
			handler:    answer(500, `{"code":"internal_error\r\n","message":"a\u001bb"}`),
			wantStatus: 500,
			wantCode:   "internal_error",
			wantMsg:    "opa: status 500 internal_error: ab",
		},
		{
			name:       "200 garbage",
			handler:    answer(200, `not json`),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "200 truncated",
			handler:    answer(200, `{"result":tr`),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "200 empty",
			handler:    answer(200, ``),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "200 bare true",
			handler:    answer(200, `true`),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "200 null",
			handler:    answer(200, `null`),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "200 array",
			handler:    answer(200, `[{"result":true}]`),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "200 trailing data",
			handler:    answer(200, `{"result":false} {"result":true}`),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer is not a JSON object",
		},
		{
			name:       "body too large with Content-Length",
			handler:    answer(200, `{"result":true,"pad":"`+strings.Repeat("x", 100)+`"}`),
			max:        64,
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer larger than 64 bytes",
		},
		{
			name: "body too large, chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"result":true,"pad":"`)
				w.(http.Flusher).Flush() // no Content-Length
				io.WriteString(w, strings.Repeat("x", 100)+`"}`)
			},
			max:        64,
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer larger than 64 bytes",
		},
		{
			name:       "body too large by default",
			handler:    answer(200, `{"result":true}`+strings.Repeat(" ", opa.DefaultMaxResponseBytes)),
			wantStatus: 200,
			wantMsg:    "opa: status 200: answer larger than 1048576 bytes",
		},
		{
			name:       "connection refused",
			wantMsg:    "opa: post: dial tcp ",
			wantPrefix: true,
			wantIs:     syscall.ECONNREFUSED,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = func(http.ResponseWriter, *http.Request) { t.Error("closed server was called") }
			}
			srv := serve(t, h)
			c := &opa.Client{URL: srv.URL + "/v1/data/x/allow", HTTPClient: srv.Client(), MaxResponseBytes: tt.max}
			if tt.handler == nil {
				srv.Close()
			}
			r, err := c.Query(context.Background(), []byte(`{"input":{}}`))
			if err == nil {
				t.Fatalf("Query = %+v, want error", r)
			}
			if r.Defined || r.Allowed() {
				t.Errorf("Query returned %+v with the error", r)
			}
			var oe *opa.Error
			if !errors.As(err, &oe) {
				t.Fatalf("error %T %v is not *opa.Error", err, err)
			}
			if msg := err.Error(); tt.wantPrefix && !strings.HasPrefix(msg, tt.wantMsg) || !tt.wantPrefix && msg != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", msg, tt.wantMsg)
			}
			if oe.StatusCode != tt.wantStatus || oe.Code != tt.wantCode {
				t.Errorf("StatusCode, Code = %d, %q; want %d, %q", oe.StatusCode, oe.Code, tt.wantStatus, tt.wantCode)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

func TestQueryMaxBoundary(t *testing.T) {
	body := `{"result":true,"pad":"` + strings.Repeat("x", 40) + `"}`
	for _, tt := range []struct {
		max     int64
		wantErr bool
	}{
		{int64(len(body)), false},
		{int64(len(body)) - 1, true},
	} {
		srv := serve(t, answer(200, body))
		c := &opa.Client{URL: srv.URL + "/v1/data/x/allow", HTTPClient: srv.Client(), MaxResponseBytes: tt.max}
		r, err := c.Query(context.Background(), []byte(`{}`))
		if (err != nil) != tt.wantErr {
			t.Errorf("max %d: Query = %+v, %v; want error %v", tt.max, r, err, tt.wantErr)
		}
		if err == nil && !r.Allowed() {
			t.Errorf("max %d: Allowed() = false", tt.max)
		}
	}
}

// resultMember reads body as one JSON object, with encoding/json's tokenizer
// rather than ParseResult's decoding, and returns the last member named
// exactly "result" (JSON parsers keep the last of duplicate names).
func resultMember(body []byte) (value []byte, isObject bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if key == "result" {
			value = bytes.TrimSpace(v)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return value, true
}

// FuzzParseResult checks that ParseResult never panics and allows only a JSON
// object whose "result" member is exactly the boolean true.
func FuzzParseResult(f *testing.F) {
	for _, s := range []string{
		`{"result":true}`,
		`{"result":false}`,
		`{}`,
		`{"result":"true"}`,
		`{"result":{"allowed":true}}`,
		`{"decision_id":"x","result":true}`,
		`{"Result":true}`,
		`{"result":false,"RESULT":true}`,
		`{"result":true,"result":false}`,
		`{"result":null}`,
		`true`,
		`null`,
		` {"result":true} `,
		`{"result":true}{}`,
		`{"result":true,"decision_id":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := opa.ParseResult(body)
		if err != nil {
			if r.Defined || r.Allowed() || r.Value != nil {
				t.Errorf("ParseResult(%q) = %+v with error %v", body, r, err)
			}
			return
		}
		if !r.Defined && r.Value != nil {
			t.Errorf("ParseResult(%q): undefined with Value %q", body, r.Value)
		}
		if r.Defined && !json.Valid(r.Value) {
			t.Errorf("ParseResult(%q).Value = %q is not JSON", body, r.Value)
		}
		if !r.Allowed() {
			return
		}
		v, ok := resultMember(body)
		if !ok {
			t.Fatalf("ParseResult(%q) allowed a body that is not one JSON object", body)
		}
		if string(v) != "true" {
			t.Fatalf("ParseResult(%q) allowed, but its \"result\" member is %q", body, v)
		}
	})
}
