package devidp

import (
	"reflect"
	"testing"
)

func TestParseClients(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		want    []Client
		wantErr string
	}{
		{
			name: "default clients",
			spec: "authgate:authgate-dev-secret:,demo:demo-secret:read_sayhello read_saysecret",
			want: []Client{
				{ID: "authgate", Secret: "authgate-dev-secret", Scopes: []string{}},
				{ID: "demo", Secret: "demo-secret", Scopes: []string{"read_sayhello", "read_saysecret"}},
			},
		},
		{
			name: "no scope part, spaces, scope with a colon",
			spec: " a:s , b:t:  api:read  write ",
			want: []Client{
				{ID: "a", Secret: "s", Scopes: []string{}},
				{ID: "b", Secret: "t", Scopes: []string{"api:read", "write"}},
			},
		},
		{name: "empty", spec: "  ", wantErr: "clients: empty list"},
		{name: "no colon; the entry is not echoed", spec: "a:s,topsecret", wantErr: "clients: client 2: want id:secret:scopes"},
		{name: "trailing comma", spec: "a:s,", wantErr: "clients: client 2: empty entry"},
		{name: "empty id", spec: ":s", wantErr: "clients: client 1: empty id"},
		{name: "empty secret", spec: "a::x", wantErr: `clients: client 1 ("a"): empty secret`},
		{name: "duplicate id", spec: "a:s,a:t", wantErr: `clients: client 2: duplicate id "a"`},
		{name: "invalid scope", spec: `a:s:ok b"ad`, wantErr: `clients: client 1 ("a"): invalid scope "b\"ad"`},
		{
			name:    "all syntax errors at once",
			spec:    "a,,b",
			wantErr: "clients: client 1: want id:secret:scopes\nclient 2: empty entry\nclient 3: want id:secret:scopes",
		},
		{
			name:    "all other errors at once",
			spec:    "a:,a:s",
			wantErr: "clients: client 1 (\"a\"): empty secret\nclient 2: duplicate id \"a\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClients(tt.spec)
			if errString(err) != tt.wantErr {
				t.Fatalf("err = %q, want %q", errString(err), tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
