// Command load runs authgate's load scenarios with hey and prints one table:
// scenario, requests, concurrency, req/s, p50, p99, status counts and the
// introspection calls made. It starts the local stack (OPA, the development
// authorization server, authgate) unless one is already running on the
// default addresses, plus the baselines measured in the same run: OPA called
// directly, the minimal hop (test/load/minihop) and a bare Echo handler
// (test/load/bare). Loopback only; bounded in requests and time.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding opa, hey, authgate, minihop, bare")
	flag.IntVar(&o.requests, "n", 20000, "requests per saturated scenario")
	flag.IntVar(&o.concurrency, "c", 50, "concurrency of the saturated scenarios")
	flag.IntVar(&o.coldTokens, "cold-tokens", 200, "distinct tokens in the cold scenario")
	flag.IntVar(&o.coldFanout, "cold-fanout", 5, "concurrent requests per token in the cold scenario")
	flag.DurationVar(&o.idpLatency, "idp-latency", 50e6, "artificial latency of the development authorization server (an Okta round trip)")
	flag.StringVar(&o.only, "only", "", `"fleet": run only the fleet scenarios (three replicas on redis-server)`)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
