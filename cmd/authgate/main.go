// Command authgate is an HTTP gateway that lets a request through only when
// its bearer token is active (RFC 7662 introspection) and Open Policy Agent
// allows it. Configuration: see .env.example.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/authgate/authgate/internal/app"
)

func main() {
	if err := app.Run(context.Background(), os.Args, os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "authgate:", err)
		os.Exit(1)
	}
}
