package resource

import "testing"

func TestMetadataURL(t *testing.T) {
	for uri, want := range map[string]string{
		"https://mcp.example.com/mcp":      "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com":          "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":         "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com:8443/a/b": "https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b",
		"https://mcp.example.com/mcp/":     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/",
		"http://127.0.0.1:8086/mcp":        "http://127.0.0.1:8086/.well-known/oauth-protected-resource/mcp",
	} {
		if got := (&ProtectedResource{URI: uri}).MetadataURL(); got != want {
			t.Errorf("MetadataURL(%s) = %s, want %s", uri, got, want)
		}
	}
}
