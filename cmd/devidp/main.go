// Command devidp runs a DEVELOPMENT-ONLY, Okta-compatible authorization
// server (see internal/devidp) so that authgate can run and be tested without
// an Okta tenant. Never expose it to untrusted networks.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/authgate/authgate/internal/devidp"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devidp:", err)
		os.Exit(1)
	}
}

// defaultClients are the well-known development clients: authgate, which
// introspects, and demo, which gets tokens to call the API with.
const defaultClients = "authgate:authgate-dev-secret:,demo:demo-secret:read_sayhello read_saysecret"

// options are the command-line settings.
type options struct {
	addr       string
	issuerPath string
	clients    string
	tokenTTL   time.Duration
	latency    time.Duration
	rateLimit  int
	jwt        bool
}

// parseOptions parses args. A flag that is not given takes the value of its
// environment variable, DEVIDP_ and its name in upper case with '_' for '-'
// (DEVIDP_TOKEN_TTL for -token-ttl), if set, and else its default.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:9000", "listen address; port 0 picks a free port")
	fs.StringVar(&o.issuerPath, "issuer-path", "/oauth2/default", "path of the issuer URL")
	fs.StringVar(&o.clients, "clients", defaultClients, "clients, as id:secret:scope1 scope2,id2:secret2:scopeA")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "lifetime of issued tokens")
	fs.DurationVar(&o.latency, "latency", 0, "artificial delay of every introspection answer")
	fs.IntVar(&o.rateLimit, "rate-limit", 0, "requests per minute over /v1/*, reported in X-Rate-Limit-* headers; 0 is unlimited")
	fs.BoolVar(&o.jwt, "jwt", false, "issue JWT access tokens (keys at {issuer}/v1/keys) instead of opaque ones")
	envName := func(f *flag.Flag) string {
		return "DEVIDP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
	}
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f) + ")" })
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f))
		if given[f.Name] || v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			// Only numbers fail to parse, so v is not a secret.
			errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f), v, err))
		}
	})
	if o.issuerPath != "" && !strings.HasPrefix(o.issuerPath, "/") {
		errs = append(errs, fmt.Errorf("issuer path %q must start with /", o.issuerPath))
	}
	return o, errors.Join(errs...)
}

// run serves until ctx is cancelled or SIGINT or SIGTERM arrives. It prints
// only diagnostics, to stderr; stdout is unused.
func run(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	o, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	clients, err := devidp.ParseClients(o.clients)
	if err != nil {
		return err
	}

	// Listen first so that the issuer names the actual port when it is 0.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	issuer := "http://" + ln.Addr().String() + o.issuerPath
	idp, err := devidp.New(devidp.Config{
		Issuer:    issuer,
		Clients:   clients,
		TokenTTL:  o.tokenTTL,
		Latency:   o.latency,
		RateLimit: o.rateLimit,
		JWT:       o.jwt,
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(stderr, "devidp: DEVELOPMENT ONLY authorization server — not for production; issuer %s\n", issuer)
	for _, c := range clients {
		fmt.Fprintf(stderr, "devidp: client %s scopes: %s\n", c.ID, cmp.Or(strings.Join(c.Scopes, " "), "(none)"))
	}
	// Show a client that gets scopes, if any: its tokens are the useful ones.
	example := clients[0]
	if i := slices.IndexFunc(clients, func(c devidp.Client) bool { return len(c.Scopes) > 0 }); i >= 0 {
		example = clients[i]
	}
	fmt.Fprintf(stderr, "devidp: try: curl -s -u '%s:<secret>' -d grant_type=client_credentials %s/v1/token\n", example.ID, issuer)

	srv := &http.Server{
		Handler:           idp.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      o.latency + 10*time.Second, // introspection answers wait o.latency
		IdleTimeout:       time.Minute,
		ErrorLog:          log.New(stderr, "devidp: ", 0),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
