package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// The resource of these tests: an MCP server behind authgate. Its name is
// not authgate's address: the metadata must be built from RESOURCE_URI,
// never from the request, so the tests resolve mcp.example.com to
// authgate themselves, as DNS would.
const (
	mcpResource    = "https://mcp.example.com/mcp"
	mcpMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
)

var resourceMetadataParam = regexp.MustCompile(`resource_metadata="([^"]*)"`)

// resourceEnv is authgate with RESOURCE_URI in proxy mode before up, with
// the test policy that allows everything outside /odd/.
func resourceEnv(i *stacktest.IDP, o *opatest.Server, upstream string) map[string]string {
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = strings.Replace(env["OPA_AUTHZ_URL"], stacktest.DecisionPath, echoDecision, 1)
	env["RESOURCE_URI"] = mcpResource
	env["RESOURCE_SCOPES"] = "api_read,api_write"
	env["RESOURCE_NAME"] = "Example MCP server"
	if upstream != "" {
		env["UPSTREAM_URL"] = upstream
	}
	return env
}

// TestResourceDiscovery walks an MCP client's discovery through authgate
// in proxy mode: 401 → protected-resource metadata → authorization server
// metadata → token for the resource → 200. A token for another audience
// is refused.
func TestResourceDiscovery(t *testing.T) {
	i := stacktest.StartIDP(t, 0)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"upstream":%q}`, r.URL.Path)
	}))
	t.Cleanup(up.Close)
	env := resourceEnv(i, startModesOPA(t), up.URL)
	env["TRUSTED_PROXIES"] = "127.0.0.1" // so that X-Forwarded-Host is believed, and still ignored
	gw := stacktest.StartGateway(t, env)

	// 1. No token: 401 naming the metadata.
	r := stacktest.Get(t, gw.Traffic+"/mcp", "")
	m := resourceMetadataParam.FindStringSubmatch(r.Header.Get("WWW-Authenticate"))
	if r.Status != 401 || m == nil || m[1] != mcpMetadataURL {
		t.Fatalf("%d, WWW-Authenticate %q: want 401 naming %s", r.Status, r.Header.Get("WWW-Authenticate"), mcpMetadataURL)
	}

	// 2. The metadata (at authgate, as mcp.example.com resolves there), both
	// paths, with CORS for browser clients; the forwarded host names another server.
	u, _ := url.Parse(m[1])
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		Scopes               []string `json:"scopes_supported"`
		BearerMethods        []string `json:"bearer_methods_supported"`
		Name                 string   `json:"resource_name"`
	}
	for _, path := range []string{u.Path, "/.well-known/oauth-protected-resource"} {
		r = do(t, "GET", gw.Traffic+path, map[string]string{"X-Forwarded-Host": "evil.example", "Origin": "https://app.example"}, nil)
		if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Cache-Control") == "" {
			t.Fatalf("GET %s: %d %v %s", path, r.Status, r.Header, r.Body)
		}
		if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Resource != mcpResource || !slices.Equal(doc.AuthorizationServers, []string{i.Issuer}) ||
			!slices.Equal(doc.Scopes, []string{"api_read", "api_write"}) || !slices.Equal(doc.BearerMethods, []string{"header"}) ||
			doc.Name != "Example MCP server" {
			t.Errorf("GET %s: %s", path, r.Body)
		}
	}

	// 3. The authorization server's metadata (Okta's location, under the issuer).
	r = stacktest.Get(t, doc.AuthorizationServers[0]+"/.well-known/oauth-authorization-server", "")
	var as struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal([]byte(r.Body), &as); err != nil || as.Issuer != i.Issuer || as.TokenEndpoint == "" {
		t.Fatalf("authorization server metadata %d %s", r.Status, r.Body)
	}

	// 4. A token for the resource (RFC 8707), then 200.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api_read"}, "resource": {doc.Resource}}
	req, _ := http.NewRequest("POST", as.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(stacktest.DemoClient, stacktest.DemoSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if r = stacktest.Get(t, gw.Traffic+"/mcp", tok.AccessToken); r.Status != 200 || r.Body != `{"upstream":"/mcp"}` {
		t.Fatalf("with the token: %d %s", r.Status, r.Body)
	}

	// A token for another audience (the server's default) is invalid here.
	other := i.Token(t, "api_read")
	r = stacktest.Get(t, gw.Traffic+"/mcp", other)
	if r.Status != 401 || r.ErrorCode(t) != "invalid_token" || !strings.Contains(r.Header.Get("WWW-Authenticate"), `resource_metadata="`+mcpMetadataURL+`"`) {
		t.Errorf("wrong audience: %d %v %s", r.Status, r.Header, r.Body)
	}
	// So at /verify.
	r = do(t, "GET", gw.Admin+"/verify/mcp", bearer(other), nil)
	if r.Status != 401 || r.ErrorCode(t) != "invalid_token" {
		t.Errorf("wrong audience at /verify: %d %s", r.Status, r.Body)
	}
	if r = do(t, "GET", gw.Admin+"/verify/mcp", bearer(tok.AccessToken), nil); r.Status != 200 {
		t.Errorf("right audience at /verify: %d %s", r.Status, r.Body)
	}
	gw.AssertNoLeaks(t, tok.AccessToken, other, stacktest.GatewaySecret)
}

// TestResourceChallengeEveryMode: the 401 names the metadata in serve mode,
// in proxy mode and at /verify (which nginx passes to the client).
func TestResourceChallengeEveryMode(t *testing.T) {
	i := stacktest.StartIDP(t, 0)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("upstream reached: %s", r.URL) }))
	t.Cleanup(up.Close)
	o := startModesOPA(t)
	serveEnv := resourceEnv(i, o, "")
	serveEnv["OPA_AUTHZ_URL"] = strings.Replace(serveEnv["OPA_AUTHZ_URL"], echoDecision, stacktest.DecisionPath, 1)
	serveGW := stacktest.StartGateway(t, serveEnv)
	proxyGW := stacktest.StartGateway(t, resourceEnv(i, o, up.URL))
	want := `resource_metadata="` + mcpMetadataURL + `"`
	for name, target := range map[string]string{
		"serve":         serveGW.Traffic + "/sayhello",
		"proxy":         proxyGW.Traffic + "/mcp",
		"verify":        proxyGW.Admin + "/verify/mcp",
		"verify, nginx": proxyGW.Admin + "/verify",
	} {
		for _, token := range []string{"", "not-a-known-token"} {
			h := map[string]string{"X-Original-URI": "/mcp"}
			if !strings.HasSuffix(target, "/verify") {
				h = nil
			}
			if token != "" {
				h = with(h, "Authorization", "Bearer "+token)
			}
			r := do(t, "GET", target, h, nil)
			if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), want) {
				t.Errorf("%s, token %q: %d, WWW-Authenticate %q", name, token, r.Status, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// The metadata is served in serve mode too.
	if r := stacktest.Get(t, serveGW.Traffic+"/.well-known/oauth-protected-resource/mcp", ""); r.Status != 200 || !strings.Contains(r.Body, `"resource":"`+mcpResource+`"`) {
		t.Errorf("serve mode metadata: %d %s", r.Status, r.Body)
	}
}
