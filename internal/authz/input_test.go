package authz

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/authn"
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
	tok := &authn.Token{Subject: s, Scopes: []string{s, "b"}, Claims: json.RawMessage(`{"active":true,"sub":` + string(mustJSON(s)) + `}`)}
	in := &Input{Method: s, Path: s, Host: s, Scheme: s, RemoteAddr: s, Mode: ModeProxy,
		Query: url.Values{s: {s, s}}, Headers: Headers{Header: h}}
	in.SetToken(tok, s, true)
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

// The members nil would make null are written empty, and jwt is absent
// unless OPA_SEND_TOKEN asks for it.
func TestAppendJSONEmptyMembers(t *testing.T) {
	in := Input{Method: "GET", Path: "/"}
	in.SetToken(&authn.Token{Claims: json.RawMessage(`{}`)}, "secret-token", false)
	doc, _ := in.AppendJSON(nil)
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
