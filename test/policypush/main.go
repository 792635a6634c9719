// Command policypush deploys the Rego policies under a directory to a
// running OPA through its Policy API, as the service authgate replaces
// did: PUT /v1/policies/{id} for each .rego file (tests excluded), the id
// being the file's path under the directory. It stops at the first policy
// OPA refuses and prints OPA's error body. make policy-push runs it with
// OPA_URL (default http://127.0.0.1:8181).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	opaURL := flag.String("opa", envOr("OPA_URL", "http://127.0.0.1:8181"), "OPA's base URL (env OPA_URL)")
	dir := flag.String("dir", "opa-policies", "directory of .rego files")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := push(ctx, http.DefaultClient, *opaURL, *dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "policy-push:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// policies lists the .rego files under dir that are not tests, as ids
// (slash-separated paths relative to dir), sorted.
func policies(dir string) ([]string, error) {
	var ids []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		ids = append(ids, filepath.ToSlash(rel))
		return err
	})
	sort.Strings(ids)
	return ids, err
}

// push uploads every policy of dir to OPA at base.
func push(ctx context.Context, hc *http.Client, base, dir string, out io.Writer) error {
	ids, err := policies(dir)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no policies under %s", dir)
	}
	for _, id := range ids {
		body, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(id)))
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(base, "/")+"/v1/policies/"+id, strings.NewReader(string(body)))
		if err != nil {
			return fmt.Errorf("OPA_URL: %w", err)
		}
		req.Header.Set("Content-Type", "text/plain")
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: OPA answered %d: %s", id, resp.StatusCode, strings.TrimSpace(string(answer)))
		}
		fmt.Fprintf(out, "pushed %s\n", id)
	}
	return nil
}
