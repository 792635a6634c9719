package bearer

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/fault"
)

func TestBearerToken(t *testing.T) {
	long := strings.Repeat("a", MaxTokenBytes)
	for _, tc := range []struct {
		name    string
		headers []string // Authorization values; nil: no header
		want    string   // the token, when ok
		kind    fault.Kind
		code    string
		ok      bool
	}{
		{name: "no header", kind: fault.NoToken},
		{name: "empty header", headers: []string{""}, kind: fault.NoToken},
		{name: "basic", headers: []string{"Basic dXNlcjpwYXNz"}, kind: fault.NoToken},
		{name: "other scheme", headers: []string{"DPoP abc"}, kind: fault.NoToken},
		{name: "scheme glued to the token", headers: []string{"Bearerabc"}, kind: fault.NoToken},
		{name: "Bearer", headers: []string{"Bearer abc"}, want: "abc", ok: true},
		{name: "lower case scheme", headers: []string{"bearer abc"}, want: "abc", ok: true},
		{name: "upper case scheme", headers: []string{"BEARER abc"}, want: "abc", ok: true},
		{name: "mixed case scheme", headers: []string{"bEaReR abc"}, want: "abc", ok: true},
		{name: "several spaces", headers: []string{"Bearer   abc"}, want: "abc", ok: true},
		{name: "jwt", headers: []string{"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_~+/"}, want: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_~+/", ok: true},
		{name: "padding", headers: []string{"Bearer abc=="}, want: "abc==", ok: true},
		{name: "MaxTokenBytes", headers: []string{"Bearer " + long}, want: long, ok: true},
		{name: "scheme only", headers: []string{"Bearer"}, kind: fault.BadRequest, code: "invalid_request"},
		{name: "scheme and space", headers: []string{"Bearer "}, kind: fault.BadRequest, code: "invalid_request"},
		{name: "scheme and spaces", headers: []string{"Bearer    "}, kind: fault.BadRequest, code: "invalid_request"},
		{name: "two headers", headers: []string{"Bearer abc", "Bearer def"}, kind: fault.BadRequest, code: "invalid_request"},
		{name: "two headers, one not bearer", headers: []string{"Basic xxx", "Bearer def"}, kind: fault.BadRequest, code: "invalid_request"},
		{name: "space in token", headers: []string{"Bearer abc def"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "trailing space", headers: []string{"Bearer abc "}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "comma", headers: []string{"Bearer abc,def"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "quote", headers: []string{`Bearer "abc"`}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "tab", headers: []string{"Bearer abc\tdef"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "non-ASCII", headers: []string{"Bearer abcé"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "invalid UTF-8", headers: []string{"Bearer abc\xff"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "NUL", headers: []string{"Bearer abc\x00"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "too long", headers: []string{"Bearer " + long + "a"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "= inside", headers: []string{"Bearer a=b"}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "only padding", headers: []string{"Bearer =="}, kind: fault.Unauthenticated, code: "invalid_token"},
		{name: "padding first", headers: []string{"Bearer =abc"}, kind: fault.Unauthenticated, code: "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.headers {
				h.Add("Authorization", v)
			}
			got, err := Token(h)
			if tc.ok {
				if err != nil || got != tc.want {
					t.Fatalf("Token = %.40q, %v; want %.40q", got, err, tc.want)
				}
				return
			}
			if got != "" {
				t.Errorf("Token returned %.40q with an error", got)
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != tc.kind || fe.Code != tc.code {
				t.Fatalf("Token err = %v; want kind %v, code %q", err, tc.kind, tc.code)
			}
			if tc.kind == fault.NoToken && err != ErrNoToken {
				t.Errorf("err = %v, want ErrNoToken", err)
			}
			for _, v := range tc.headers {
				if tok := strings.TrimSpace(strings.TrimPrefix(v, "Bearer")); len(tok) > 2 && strings.Contains(fe.Error(), tok) {
					t.Errorf("error %q repeats the token", fe.Error())
				}
			}
		})
	}
}

func TestIsB64Token(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "A-._~+/9": true, "abc=": true, "abc==": true, "a===": true,
		"": false, "=": false, "a=b": false, "a b": false, "a\x80": false, "a;": false, "a\x7f": false,
	} {
		if got := isB64Token(s); got != want {
			t.Errorf("isB64Token(%q) = %v, want %v", s, got, want)
		}
	}
	// Every byte outside the alphabet is refused.
	for c := range 256 {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
		if got := isB64Token(string([]byte{byte(c)})); got != want {
			t.Errorf("isB64Token(%q) = %v, want %v", byte(c), got, want)
		}
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "bearer abc", "Bearer abc==", "Bearer a=b", "Basic xxx",
		"Bearer abc def", "Bearer  \x00", "Bearer é", "BEARER eyJ.eyJ.sig-_~+/",
	} {
		f.Add(s, "")
	}
	f.Add("Bearer abc", "Bearer def")
	f.Fuzz(func(t *testing.T, first, second string) {
		h := http.Header{"Authorization": {first}}
		if second != "" {
			h.Add("Authorization", second)
		}
		tok, err := Token(h)
		if err != nil {
			if tok != "" {
				t.Errorf("token %q with error %v", tok, err)
			}
			if k := fault.KindOf(err); k != fault.NoToken && k != fault.Unauthenticated && k != fault.BadRequest {
				t.Errorf("error kind %v: %v", k, err)
			}
			return
		}
		if second != "" {
			t.Errorf("token %q from two Authorization headers", tok)
		}
		if !isB64Token(tok) {
			t.Errorf("token %q is not a b64token", tok)
		}
		if len(tok) > MaxTokenBytes {
			t.Errorf("token of %d bytes", len(tok))
		}
		if !strings.HasSuffix(first, tok) || !strings.EqualFold(first[:6], "Bearer") {
			t.Errorf("token %q is not the end of the Bearer header %q", tok, first)
		}
	})
}

func BenchmarkBearerToken(b *testing.B) {
	h := http.Header{"Authorization": {"Bearer eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJzdWIiOiJhbGljZSIsInNjcCI6WyJyZWFkX3NheWhlbGxvIl0sImV4cCI6MTc5MDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Token(h); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCredentials: the DPoP scheme (RFC 9449 section 7.1) is read like
// Bearer, with the scheme named; any other scheme is no credentials.
func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		header, scheme, token string
		kind                  fault.Kind
	}{
		{header: "Bearer abc", scheme: SchemeBearer, token: "abc"},
		{header: "DPoP abc", scheme: SchemeDPoP, token: "abc"},
		{header: "dpop  abc", scheme: SchemeDPoP, token: "abc"},
		{header: "DPoPabc", kind: fault.NoToken},
		{header: "DPoP ", kind: fault.BadRequest},
		{header: "DPoP a b", kind: fault.Unauthenticated},
		{header: "Basic abc", kind: fault.NoToken},
	} {
		scheme, tok, err := Credentials(http.Header{"Authorization": {tc.header}})
		var fe *fault.Error
		switch {
		case tc.kind != 0 && (!errors.As(err, &fe) || fe.Kind != tc.kind):
			t.Errorf("%q: err = %v, want kind %v", tc.header, err, tc.kind)
		case tc.kind == 0 && (err != nil || scheme != tc.scheme || tok != tc.token):
			t.Errorf("%q = %q, %q, %v; want %q, %q", tc.header, scheme, tok, err, tc.scheme, tc.token)
		}
	}
	// Token stays Bearer only.
	if _, err := Token(http.Header{"Authorization": {"DPoP abc"}}); err != ErrNoToken {
		t.Errorf("Token(DPoP) err = %v, want ErrNoToken", err)
	}
}
