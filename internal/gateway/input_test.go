package gateway

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/authn"
)

// opaInput is the decoded OPA input document.
type opaInput struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	API     string              `json:"api"`
	Query   map[string][]string `json:"query"`
	Headers map[string]string   `json:"headers"`
	Token   json.RawMessage     `json:"token"`
	Scopes  []string            `json:"scopes"`
	Subject string              `json:"subject"`
	Host    string              `json:"host"`
	Scheme  string              `json:"scheme"`
	Remote  string              `json:"remote_addr"`
	Mode    string              `json:"mode"`
	// Validation is how the token was validated: "jwt" or "introspection".
	Validation string `json:"validation"`
	JWT        *struct {
		TokenValue string `json:"tokenValue"`
	} `json:"jwt"`
}

// decodeInput checks that doc is valid JSON of the shape {"input":{...}}
// with exactly the documented members, and decodes it.
func decodeInput(t *testing.T, doc []byte, withJWT bool) opaInput {
	t.Helper()
	if !json.Valid(doc) {
		t.Fatalf("input is not valid JSON: %s", doc)
	}
	var outer map[string]map[string]json.RawMessage
	if err := json.Unmarshal(doc, &outer); err != nil {
		t.Fatalf("input is not {\"input\":{...}}: %v: %s", err, doc)
	}
	members := slices.Sorted(maps.Keys(outer["input"]))
	want := []string{"api", "headers", "host", "method", "mode", "path", "query", "remote_addr", "scheme", "scopes", "subject", "token", "validation"}
	if withJWT {
		want = append(want, "jwt")
		slices.Sort(want)
	}
	if len(outer) != 1 || !slices.Equal(members, want) {
		t.Fatalf("input members = %q (outer %d), want %q", members, len(outer), want)
	}
	var in struct{ Input opaInput }
	d := json.NewDecoder(bytes.NewReader(doc))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		t.Fatalf("decoding input: %v", err)
	}
	return in.Input
}

func testToken() *authn.Token {
	return &authn.Token{
		Subject:  "alice",
		ClientID: "demo",
		Scope:    "read_sayhello openid",
		Scopes:   []string{"read_sayhello", "openid"},
		Claims:   json.RawMessage(`{"active":true,"sub":"alice","client_id":"demo","scope":"read_sayhello openid","exp":1790000000,"x":{"y":[1,"</script>"]}}`),

		Validation: authn.ValidationIntrospection,
	}
}

func TestAppendInputFields(t *testing.T) {
	const raw = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+raw)
	h.Set("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0")
	h.Set("Cookie", "session=s3cr3t")
	h.Set("User-Agent", "curl/8.0")
	h.Add("X-Forwarded-For", "10.0.0.1")
	h.Add("X-Forwarded-For", "10.0.0.2")
	f := &facts{method: "GET", path: "/sayhello", query: url.Values{"q": {"a", "b"}, "empty": {""}}, header: h}

	for _, sendToken := range []bool{false, true} {
		doc := appendInput(nil, f, testToken(), raw, sendToken)
		in := decodeInput(t, doc, sendToken)
		if in.Method != "GET" || in.Path != "/sayhello" || in.API != "/sayhello" {
			t.Errorf("method, path, api = %q, %q, %q", in.Method, in.Path, in.API)
		}
		if want := map[string][]string{"q": {"a", "b"}, "empty": {""}}; !maps.EqualFunc(in.Query, want, slices.Equal) {
			t.Errorf("query = %q, want %q", in.Query, want)
		}
		if want := map[string]string{"user-agent": "curl/8.0", "x-forwarded-for": "10.0.0.1, 10.0.0.2"}; !maps.Equal(in.Headers, want) {
			t.Errorf("headers = %q, want %q", in.Headers, want)
		}
		var compact bytes.Buffer
		json.Compact(&compact, testToken().Claims)
		if !bytes.Equal(in.Token, compact.Bytes()) {
			t.Errorf("token = %s, want the claims %s", in.Token, compact.Bytes())
		}
		if !slices.Equal(in.Scopes, []string{"read_sayhello", "openid"}) || in.Subject != "alice" {
			t.Errorf("scopes, subject = %q, %q", in.Scopes, in.Subject)
		}
		if in.Validation != "introspection" {
			t.Errorf("validation = %q, want introspection", in.Validation)
		}
		for _, secret := range []string{"cHJveHk6c2VjcmV0", "s3cr3t", "authorization", "cookie"} {
			if bytes.Contains(bytes.ToLower(doc), []byte(strings.ToLower(secret))) {
				t.Errorf("input contains %q: %s", secret, doc)
			}
		}
		if got := bytes.Contains(doc, []byte(raw)); got != sendToken {
			t.Errorf("sendToken %v: raw token in input = %v", sendToken, got)
		}
		if sendToken && (in.JWT == nil || in.JWT.TokenValue != raw) {
			t.Errorf("jwt = %+v, want tokenValue %q", in.JWT, raw)
		}
	}
}

func TestAppendInputEmpty(t *testing.T) {
	tok := &authn.Token{Claims: json.RawMessage(`{"active":true}`)}
	doc := appendInput(nil, &facts{method: "GET", path: "/"}, tok, "t", false)
	in := decodeInput(t, doc, false)
	if in.Query == nil || len(in.Query) != 0 || in.Headers == nil || len(in.Headers) != 0 {
		t.Errorf("query, headers = %v, %v; want empty objects", in.Query, in.Headers)
	}
	if in.Scopes == nil || len(in.Scopes) != 0 {
		t.Errorf("scopes = %v, want an empty array: %s", in.Scopes, doc)
	}
}

func TestAppendInputAppends(t *testing.T) {
	prefix := []byte("keep me")
	doc := appendInput(slices.Clip(prefix), &facts{method: "GET", path: "/"}, testToken(), "t", false)
	if !bytes.HasPrefix(doc, prefix) {
		t.Fatalf("appendInput lost the buffer's contents: %s", doc)
	}
	decodeInput(t, doc[len(prefix):], false)
}

// trickyStrings must survive appendInput as encoding/json would carry them.
var trickyStrings = []string{
	"",
	"plain",
	`quote " backslash \ slash /`,
	"</script><script>alert(1)</script>",
	"<>&'",
	"\x00\x01\x1f\x7f",
	"new\nline\rreturn\ttab\b\f",
	"é ☃ 😀 日本",
	"\u2028\u2029",
	"\ufffd",
	"bad \xff utf-8 \xc3",
	"\xed\xa0\x80 surrogate",
	"\xf4\x90\x80\x80 beyond U+10FFFF",
	"trailing \xe2\x82",
}

func TestAppendEscapedMatchesEncodingJSON(t *testing.T) {
	for _, s := range trickyStrings {
		got := appendString(nil, s)
		if !json.Valid(got) {
			t.Errorf("appendString(%q) = %s: not valid JSON", s, got)
			continue
		}
		want, _ := json.Marshal(s)
		var gs, ws string
		json.Unmarshal(got, &gs)
		json.Unmarshal(want, &ws)
		if gs != ws {
			t.Errorf("appendString(%q) decodes to %q, encoding/json's to %q", s, gs, ws)
		}
		if strings.ToValidUTF8(s, "") == s && gs != s {
			t.Errorf("valid UTF-8 %q came back as %q", s, gs)
		}
	}
}

func TestAppendInputRoundTrip(t *testing.T) {
	for _, s := range trickyStrings {
		h := http.Header{}
		h.Set("X-Tricky", s)
		h.Set("Authorization", "Bearer "+s)
		tok := &authn.Token{Subject: s, Scopes: []string{s, "b"}, Claims: json.RawMessage(`{}`)}
		f := &facts{method: s, path: s, query: url.Values{s: {s, s}}, header: h}
		doc := appendInput(nil, f, tok, s, true)
		in := decodeInput(t, doc, true)

		b, _ := json.Marshal(s)
		var want string
		json.Unmarshal(b, &want)
		if in.Method != want || in.Path != want || in.API != want || in.Subject != want ||
			in.JWT.TokenValue != want || !slices.Equal(in.Scopes, []string{want, "b"}) ||
			!slices.Equal(in.Query[want], []string{want, want}) || in.Headers["x-tricky"] != want {
			t.Errorf("%q did not survive: %+v", s, in)
		}
	}
}

// Header names are lower-cased, even those escaped on the way.
func TestAppendInputHeaderNames(t *testing.T) {
	h := http.Header{"X-Request-Id": {"1"}, "ACCEPT": {"2"}, "X-Odd\"Name": {"3"}}
	in := decodeInput(t, appendInput(nil, &facts{method: "GET", path: "/", header: h}, testToken(), "t", false), false)
	want := map[string]string{"x-request-id": "1", "accept": "2", `x-odd"name`: "3"}
	if !maps.Equal(in.Headers, want) {
		t.Errorf("headers = %q, want %q", in.Headers, want)
	}
}

func FuzzAppendInput(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, path, value, subject string) {
		h := http.Header{"X-A": {value}}
		tok := &authn.Token{Subject: subject, Scopes: strings.Fields(value), Claims: json.RawMessage(`{}`)}
		doc := appendInput(nil, &facts{method: "GET", path: path, query: url.Values{value: {path}}, header: h}, tok, value, true)
		if !json.Valid(doc) {
			t.Fatalf("not valid JSON: %q", doc)
		}
		in := decodeInput(t, doc, true)
		norm := func(s string) string {
			b, _ := json.Marshal(s)
			var out string
			json.Unmarshal(b, &out)
			return out
		}
		if in.Path != norm(path) || in.Headers["x-a"] != norm(value) || in.Subject != norm(subject) || in.JWT.TokenValue != norm(value) {
			t.Errorf("round trip: %+v", in)
		}
	})
}

func BenchmarkAppendInput(b *testing.B) {
	h := http.Header{}
	h.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	h.Set("User-Agent", "hey/0.0.1")
	h.Set("Accept", "application/json")
	h.Set("X-Request-Id", "0f8fad5b-d9cb-469f-a165-70867728950e")
	f := &facts{method: "GET", path: "/sayhello", query: url.Values{"q": {"hello world"}}, header: h}
	tok := testToken()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendInput(buf[:0], f, tok, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", false)
	}
	b.SetBytes(int64(len(buf)))
}
