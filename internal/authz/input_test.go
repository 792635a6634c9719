package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// trickyStrings must survive AppendJSON as encoding/json would carry them.
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

// trickyInput puts s in every string member of an input.
func trickyInput(s string) *Input {
	h := http.Header{"X-Tricky": {s, s}, "Accept": {"*/*"}}
	tok := &authn.Token{Subject: s, Scopes: []string{s, "b"}, Claims: json.RawMessage(`{"active":true,"sub":` + string(mustJSON(s)) + `}`), Validation: s}
	in := &Input{Method: s, Path: s, Host: s, Scheme: s, RemoteAddr: s, Mode: ModeProxy, Issuer: s,
		Query: url.Values{s: {s, s}}, Headers: Headers{Header: h}}
	in.SetToken(tok, s, true)
	in.TokenType, in.DPoP, in.ClientCert = s, &DPoPProof{JKT: s}, &ClientCert{X5tS256: s, Subject: s}
	return in
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// decoded decodes a document into a generic value, for comparison.
func decoded(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return v
}

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
	// Issuer is the URL of the issuer that answered for the token.
	Issuer string `json:"issuer"`
	JWT    *struct {
		TokenValue string `json:"tokenValue"`
	} `json:"jwt"`
	// TokenType, DPoP and ClientCert are the sender constraint.
	TokenType string `json:"token_type"`
	DPoP      *struct {
		JKT string `json:"jkt"`
	} `json:"dpop"`
	ClientCert *struct {
		X5tS256 string `json:"x5t_s256"`
		Subject string `json:"subject"`
	} `json:"client_cert"`
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
	want := []string{"api", "headers", "host", "issuer", "method", "mode", "path", "query", "remote_addr", "scheme", "scopes", "subject", "token", "token_type", "validation"}
	if withJWT {
		want = append(want, "jwt")
	}
	// Only when there is a verified proof, a forwarded certificate.
	for _, m := range []string{"dpop", "client_cert"} {
		if _, ok := outer["input"][m]; ok {
			want = append(want, m)
		}
	}
	slices.Sort(want)
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

// TestAppendJSONAgrees is the proof that the hand-written encoder writes
// the contract the Input struct defines: for every input, AppendJSON and
// encoding/json give the same document. (Headers are checked against a map
// built independently below, since encoding/json calls their MarshalJSON.)
func TestAppendJSONAgrees(t *testing.T) {
	for _, s := range trickyStrings {
		for _, sendToken := range []bool{false, true} {
			in := trickyInput(s)
			if !sendToken {
				in.JWT = nil
			}
			got, err := in.AppendJSON(nil)
			if err != nil || !json.Valid(got) {
				t.Fatalf("%q: AppendJSON wrote invalid JSON: %s", s, got)
			}
			want := mustJSON(Document{Input: in})
			if g, w := decoded(t, got), decoded(t, want); !reflect.DeepEqual(g, w) {
				t.Errorf("%q: AppendJSON and encoding/json disagree:\n got %s\nwant %s", s, got, want)
			}
		}
	}
}

// TestAppendJSONFields: every member says what the contract says, and
// the credentials never appear unless OPA_SEND_TOKEN asks for the token.
func TestAppendJSONFields(t *testing.T) {
	const raw = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+raw)
	h.Set("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0")
	h.Set("Cookie", "session=s3cr3t")
	h.Set("User-Agent", "curl/8.0")
	h.Add("X-Forwarded-For", "10.0.0.1")
	h.Add("X-Forwarded-For", "10.0.0.2")

	for _, sendToken := range []bool{false, true} {
		in := &Input{Method: "GET", Path: "/sayhello", Query: url.Values{"q": {"a", "b"}, "empty": {""}}, Headers: Headers{Header: h},
			Host: "api.example", Scheme: "https", RemoteAddr: "192.0.2.1", Mode: ModeProxy}
		in.SetToken(testToken(), raw, sendToken)
		in.Issuer = "https://idp.example/oauth2/default"
		doc, err := in.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeInput(t, doc, sendToken)
		if got.Method != "GET" || got.Path != "/sayhello" || got.API != "/sayhello" {
			t.Errorf("method, path, api = %q, %q, %q", got.Method, got.Path, got.API)
		}
		if got.Host != "api.example" || got.Scheme != "https" || got.Remote != "192.0.2.1" || got.Mode != "proxy" {
			t.Errorf("host, scheme, remote_addr, mode = %q, %q, %q, %q", got.Host, got.Scheme, got.Remote, got.Mode)
		}
		if want := map[string][]string{"q": {"a", "b"}, "empty": {""}}; !maps.EqualFunc(got.Query, want, slices.Equal) {
			t.Errorf("query = %q, want %q", got.Query, want)
		}
		if want := map[string]string{"user-agent": "curl/8.0", "x-forwarded-for": "10.0.0.1, 10.0.0.2"}; !maps.Equal(got.Headers, want) {
			t.Errorf("headers = %q, want %q", got.Headers, want)
		}
		var compact bytes.Buffer
		json.Compact(&compact, testToken().Claims)
		if !bytes.Equal(got.Token, compact.Bytes()) {
			t.Errorf("token = %s, want the claims %s", got.Token, compact.Bytes())
		}
		if !slices.Equal(got.Scopes, []string{"read_sayhello", "openid"}) || got.Subject != "alice" {
			t.Errorf("scopes, subject = %q, %q", got.Scopes, got.Subject)
		}
		if got.Validation != "introspection" {
			t.Errorf("validation = %q, want introspection", got.Validation)
		}
		if got.Issuer != "https://idp.example/oauth2/default" {
			t.Errorf("issuer = %q, want the issuer's URL", got.Issuer)
		}
		for _, secret := range []string{"cHJveHk6c2VjcmV0", "s3cr3t", "authorization", "cookie"} {
			if bytes.Contains(bytes.ToLower(doc), []byte(strings.ToLower(secret))) {
				t.Errorf("input contains %q: %s", secret, doc)
			}
		}
		if got := bytes.Contains(doc, []byte(raw)); got != sendToken {
			t.Errorf("sendToken %v: raw token in input = %v", sendToken, got)
		}
		if sendToken && (got.JWT == nil || got.JWT.TokenValue != raw) {
			t.Errorf("jwt = %+v, want tokenValue %q", got.JWT, raw)
		}
	}
}

// The members nil would make null are written empty, and jwt is absent
// unless OPA_SEND_TOKEN asks for it.
func TestAppendJSONEmptyMembers(t *testing.T) {
	in := Input{Method: "GET", Path: "/"}
	in.SetToken(&authn.Token{Claims: json.RawMessage(`{}`)}, "secret-token", false)
	doc, _ := in.AppendJSON(nil)
	dec := decodeInput(t, doc, false)
	if dec.Query == nil || len(dec.Query) != 0 || dec.Headers == nil || len(dec.Headers) != 0 {
		t.Errorf("query, headers = %v, %v; want empty objects", dec.Query, dec.Headers)
	}
	if dec.Scopes == nil || len(dec.Scopes) != 0 {
		t.Errorf("scopes = %v, want an empty array: %s", dec.Scopes, doc)
	}
	got := string(doc)
	for _, want := range []string{`"query":{}`, `"headers":{}`, `"scopes":[]`, `"api":"/"`, `"token":{}`} {
		if !strings.Contains(got, want) {
			t.Errorf("document %s lacks %s", got, want)
		}
	}
	if strings.Contains(got, "jwt") || strings.Contains(got, "secret-token") {
		t.Errorf("raw token in the input without OPA_SEND_TOKEN: %s", got)
	}
}

func TestAppendJSONAppends(t *testing.T) {
	prefix := []byte("keep me")
	in := trickyInput("x")
	doc, _ := in.AppendJSON(slices.Clip(prefix))
	if !bytes.HasPrefix(doc, prefix) || !json.Valid(doc[len(prefix):]) {
		t.Fatalf("AppendJSON lost the buffer's contents: %s", doc)
	}
	decodeInput(t, doc[len(prefix):], true)
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

// TestAppendJSONRoundTrip: every tricky string comes back from the
// document as encoding/json would carry it, header values included (which
// TestAppendJSONAgrees cannot check: encoding/json calls the same
// Headers.MarshalJSON).
func TestAppendJSONRoundTrip(t *testing.T) {
	for _, s := range trickyStrings {
		h := http.Header{}
		h.Set("X-Tricky", s)
		h.Set("Authorization", "Bearer "+s)
		tok := &authn.Token{Subject: s, Scopes: []string{s, "b"}, Claims: json.RawMessage(`{}`), Validation: s}
		in := &Input{Method: s, Path: s, Query: url.Values{s: {s, s}}, Headers: Headers{Header: h}}
		in.SetToken(tok, s, true)
		doc, _ := in.AppendJSON(nil)
		got := decodeInput(t, doc, true)

		b, _ := json.Marshal(s)
		var want string
		json.Unmarshal(b, &want)
		if got.Method != want || got.Path != want || got.API != want || got.Subject != want || got.Validation != want ||
			got.JWT.TokenValue != want || !slices.Equal(got.Scopes, []string{want, "b"}) ||
			!slices.Equal(got.Query[want], []string{want, want}) || got.Headers["x-tricky"] != want {
			t.Errorf("%q did not survive: %+v", s, got)
		}
	}
}

// Header names are lower-cased, even those escaped on the way; repeated
// values are joined; Visible filters.
func TestHeaders(t *testing.T) {
	h := http.Header{"X-Request-Id": {"1"}, "ACCEPT": {"2", "3"}, "X-Odd\"Name": {"4"}, "Cookie": {"c"}}
	var got map[string]string
	b, _ := Headers{Header: h}.MarshalJSON()
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err, string(b))
	}
	want := map[string]string{"x-request-id": "1", "accept": "2, 3", `x-odd"name`: "4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
}

// TestHeadersOnly: with OPA_INPUT_HEADERS (Only, canonical names), only
// the listed headers are written; the credentials never are, listed or not.
func TestHeadersOnly(t *testing.T) {
	h := http.Header{"User-Agent": {"curl/8"}, "X-Tenant": {"acme"}, "X-Other": {"no"}, "X_legacy": {"1"},
		"Authorization": {"Bearer t"}, "Cookie": {"s=1"}, "Proxy-Authorization": {"Basic x"}}
	only := map[string]bool{"User-Agent": true, "X-Tenant": true, "X_legacy": true, "Authorization": true, "Cookie": true, "X-Absent": true}
	b, err := Headers{Header: h, Only: only}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err, string(b))
	}
	if want := map[string]string{"user-agent": "curl/8", "x-tenant": "acme", "x_legacy": "1"}; !maps.Equal(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
}

// TestHeadersAlso: Also shows headers whatever Only says (verify mode's
// method-override headers), never the credentials; Check counts them.
func TestHeadersAlso(t *testing.T) {
	h := http.Header{"X-Tenant": {"acme"}, "X-Other": {"no"}, "X-Http-Method-Override": {"DELETE"}, "Authorization": {"Bearer t"}}
	also := func(k string) bool { return k == "X-Http-Method-Override" || k == "Authorization" }
	hs := Headers{Header: h, Only: map[string]bool{"X-Tenant": true}, Also: also}
	b, err := hs.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err, string(b))
	}
	if want := map[string]string{"x-tenant": "acme", "x-http-method-override": "DELETE"}; !maps.Equal(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
	if err := hs.Check(); err != nil {
		t.Error(err)
	}
}

// TestHeadersBounded: past MaxHeaderFields headers or MaxHeaderBytes of
// them, the input is ErrHeadersTooLarge; the hidden headers and those
// outside Only do not count.
func TestHeadersBounded(t *testing.T) {
	many := func(n, size int) http.Header {
		h := http.Header{"Authorization": {"Bearer t"}}
		for i := range n {
			h[fmt.Sprintf("X-Pad-%04d", i)] = []string{strings.Repeat("a", size)}
		}
		return h
	}
	cases := []struct {
		name   string
		header http.Header
		only   map[string]bool
		ok     bool
	}{
		{name: "2,000 small headers", header: many(2000, 8)},
		{name: "101 headers", header: many(101, 1)},
		{name: "100 headers", header: many(100, 1), ok: true},
		{name: "one header over 64 KiB", header: many(1, 64<<10)},
		{name: "60 KiB in 10 headers", header: many(10, 6<<10), ok: true},
		{name: "2,000 headers outside the allow-list", header: many(2000, 8), only: map[string]bool{"User-Agent": true}, ok: true},
		{name: "a large cookie does not count", header: http.Header{"Cookie": {strings.Repeat("c=1; ", 20000)}}, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := sayhello()
			in.Headers = Headers{Header: tc.header, Only: tc.only}
			doc, err := in.AppendJSON(nil)
			switch {
			case tc.ok && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.ok && !json.Valid(doc):
				t.Errorf("invalid JSON")
			case !tc.ok && err != ErrHeadersTooLarge:
				t.Errorf("err = %v, want ErrHeadersTooLarge", err)
			}
		})
	}
	if k := fault.KindOf(ErrHeadersTooLarge); k != fault.HeadersTooLarge {
		t.Errorf("ErrHeadersTooLarge is of kind %v", k)
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, path, value, subject string) {
		tok := &authn.Token{Subject: subject, Scopes: strings.Fields(value), Claims: json.RawMessage(`{}`)}
		in := Input{Method: "GET", Path: path, Query: url.Values{value: {path}},
			Headers: Headers{Header: http.Header{"X-A": {value}}}}
		in.SetToken(tok, value, true)
		if in.Scopes == nil {
			in.Scopes = []string{} // nil is written [] where encoding/json writes null
		}
		got, err := in.AppendJSON(nil)
		if err != nil || !json.Valid(got) {
			t.Fatalf("not valid JSON: %q", got)
		}
		if g, w := decoded(t, got), decoded(t, mustJSON(Document{Input: &in})); !reflect.DeepEqual(g, w) {
			t.Errorf("disagree:\n got %s\nwant %s", got, mustJSON(Document{Input: &in}))
		}
		norm := func(s string) string {
			b, _ := json.Marshal(s)
			var out string
			json.Unmarshal(b, &out)
			return out
		}
		if dec := decodeInput(t, got, true); dec.Headers["x-a"] != norm(value) {
			t.Errorf("header x-a = %q, want %q", dec.Headers["x-a"], norm(value))
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	h := http.Header{}
	h.Set("User-Agent", "hey/0.0.1")
	h.Set("Accept", "application/json")
	h.Set("X-Request-Id", "0f8fad5b-d9cb-469f-a165-70867728950e")
	tok := &authn.Token{Subject: "demo", Scopes: []string{"read_sayhello"}, Claims: json.RawMessage(`{"active":true,"scope":"read_sayhello","client_id":"demo","sub":"demo"}`)}
	in := Input{Method: "GET", Path: "/sayhello", Query: url.Values{"q": {"hello world"}}, Headers: Headers{Header: h}}
	in.SetToken(tok, "", false)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = in.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodingJSON is what encoding/json costs for the same input:
// the reason AppendJSON exists (README, "Performance").
func BenchmarkEncodingJSON(b *testing.B) {
	h := http.Header{}
	h.Set("User-Agent", "hey/0.0.1")
	h.Set("Accept", "application/json")
	h.Set("X-Request-Id", "0f8fad5b-d9cb-469f-a165-70867728950e")
	tok := &authn.Token{Subject: "demo", Scopes: []string{"read_sayhello"}, Claims: json.RawMessage(`{"active":true,"scope":"read_sayhello","client_id":"demo","sub":"demo"}`)}
	b.ReportAllocs()
	for b.Loop() {
		// What a plain encoding needs: the headers as a map.
		hs := make(map[string]string, len(h))
		for k, vs := range h {
			hs[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
		doc := struct {
			Input struct {
				Method, Path, API string
				Query             url.Values
				Headers           map[string]string
				Token             json.RawMessage
				Scopes            []string
				Subject           string
			} `json:"input"`
		}{}
		doc.Input.Method, doc.Input.Path, doc.Input.API = "GET", "/sayhello", "/sayhello"
		doc.Input.Query, doc.Input.Headers, doc.Input.Token = url.Values{"q": {"hello world"}}, hs, tok.Claims
		doc.Input.Scopes, doc.Input.Subject = tok.Scopes, tok.Subject
		if _, err := json.Marshal(&doc); err != nil {
			b.Fatal(err)
		}
	}
}

// Check and AppendJSON agree on which headers are past the bounds, at the
// bounds and one past them, with escaping that grows the encoding.
func TestHeadersCheckAgrees(t *testing.T) {
	fill := func(fields, valueLen int, c string) http.Header {
		h := http.Header{}
		for i := range fields {
			h["X-H"+strconv.Itoa(i)] = []string{strings.Repeat(c, valueLen)}
		}
		return h
	}
	cases := []http.Header{
		{},
		fill(MaxHeaderFields, 10, "a"),
		fill(MaxHeaderFields+1, 1, "a"),
		fill(2, MaxHeaderBytes/2, "a"),
		fill(1, MaxHeaderBytes, "a"),
		fill(1, MaxHeaderBytes-len(`"x-h0":""`), "a"),
		fill(1, MaxHeaderBytes-len(`"x-h0":""`)+1, "a"),
		fill(1, MaxHeaderBytes/6, "\x01"),
		fill(1, MaxHeaderBytes/6+1, "\x01"),
		fill(1, MaxHeaderBytes/6+1, "\xff"),
		fill(1, MaxHeaderBytes/2+1, `"`),
		{"A": {strings.Repeat("a", MaxHeaderBytes/4), strings.Repeat("b", MaxHeaderBytes/4)}, "B": {strings.Repeat("é", MaxHeaderBytes/4)}},
	}
	for i, h := range cases {
		hs := Headers{Header: h}
		_, encErr := hs.appendJSON(nil)
		if chk := hs.Check(); (chk == nil) != (encErr == nil) {
			t.Errorf("case %d: Check = %v, AppendJSON = %v", i, chk, encErr)
		}
	}
}

// TestAppendJSONSenderConstraint: token_type is always there, dpop and
// client_cert only when set, with the contract's member names.
func TestAppendJSONSenderConstraint(t *testing.T) {
	in := &Input{Method: "GET", Path: "/x", Headers: Headers{Header: http.Header{}}}
	in.SetToken(testToken(), "", false)
	in.TokenType = "Bearer"
	doc, err := in.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInput(t, doc, false); got.TokenType != "Bearer" || got.DPoP != nil || got.ClientCert != nil {
		t.Errorf("bearer: %s", doc)
	}
	in.TokenType, in.DPoP, in.ClientCert = "DPoP", &DPoPProof{JKT: "k"}, &ClientCert{X5tS256: "x", Subject: "CN=c"}
	if doc, err = in.AppendJSON(nil); err != nil {
		t.Fatal(err)
	}
	got := decodeInput(t, doc, false)
	if got.TokenType != "DPoP" || got.DPoP == nil || got.DPoP.JKT != "k" || got.ClientCert == nil || got.ClientCert.X5tS256 != "x" || got.ClientCert.Subject != "CN=c" {
		t.Errorf("dpop: %s", doc)
	}
}
