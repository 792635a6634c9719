// Package opatest runs the pinned Open Policy Agent binary as a real server for
// tests. It is imported only by tests.
package opatest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	module = "github.com/authgate/authgate"

	// healthTimeout bounds how long a started OPA may take to answer GET /health.
	healthTimeout = 30 * time.Second
	// stopTimeout is how long OPA gets to exit after SIGTERM before it is killed.
	stopTimeout = 5 * time.Second
	// startAttempts covers the race between picking a free port and OPA binding it.
	startAttempts = 3
)

// RepoRoot returns the directory holding the go.mod of github.com/authgate/authgate,
// walking up from the working directory (the test's package directory).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("opatest: %v", err)
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == module {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("opatest: no go.mod for module %s above the working directory", module)
		}
		dir = parent
	}
}

// modulePath returns the module path declared in the go.mod file at path, or ""
// if there is none. Nested modules such as internal/tools are skipped this way.
func modulePath(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Binary returns the path of the pinned OPA binary: $OPA_BIN if set, else
// <repo root>/bin/opa, building it first if it does not exist. The build takes
// a few minutes; a file lock makes concurrent test binaries build it once.
func Binary(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv("OPA_BIN"); bin != "" {
		return bin
	}
	root := RepoRoot(tb)
	binDir := filepath.Join(root, "bin")
	bin := filepath.Join(binDir, "opa")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		tb.Fatalf("opatest: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(binDir, ".opa.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		tb.Fatalf("opatest: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatalf("opatest: lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	// Build next to the target and rename, so nobody sees a half-written binary.
	tmp := filepath.Join(binDir, fmt.Sprintf(".opa.%d", os.Getpid()))
	tb.Logf("opatest: building %s (takes a few minutes)", bin)
	// Static and -trimpath, as the Makefile builds it (make opa-image reuses
	// the compiled packages).
	cmd := exec.Command("go", "build", "-C", filepath.Join(root, "internal", "tools"),
		"-o", tmp, "-trimpath", "github.com/open-policy-agent/opa")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		tb.Fatalf("opatest: build opa: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		tb.Fatalf("opatest: %v", err)
	}
	return bin
}

// Server is an OPA server process started by Start. It is stopped when the
// test ends.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:PORT". It does not change on Restart.
	URL string

	bin  string
	args []string
	addr string

	mu   sync.Mutex
	out  bytes.Buffer  // OPA's stdout and stderr, across restarts
	cmd  *exec.Cmd     // nil when stopped
	done chan struct{} // closed when cmd has exited
}

// Start runs `opa run --server` on a free loopback port with args appended:
// policy and data paths, and any extra flags. It returns once GET /health
// answers 200. OPA's output is logged if the test fails.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	s := &Server{bin: Binary(tb), args: args}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("opatest: opa output:\n%s", s.out.String())
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for range startAttempts {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s.addr = fmt.Sprintf("127.0.0.1:%d", port)
		s.URL = "http://" + s.addr
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("opatest: start opa: %v", err)
	return nil
}

// Stop stops OPA now (SIGTERM, then kill after a few seconds) and waits for it
// to exit. Requests then fail with connection refused. Stop is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

// Restart stops OPA if it is running and starts it again on the same port, with
// the same arguments, returning once it is healthy.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
	if err := s.start(); err != nil {
		tb.Fatalf("opatest: restart opa on %s: %v", s.addr, err)
	}
}

// start runs OPA on s.addr and waits for it to be healthy. On failure the
// process is gone when it returns. s.mu must be held.
func (s *Server) start() error {
	args := append([]string{"run", "--server", "--addr", s.addr, "--log-level", "error"}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = &s.out
	cmd.Stderr = &s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := s.waitHealthy(); err != nil {
		s.stop()
		return err
	}
	return nil
}

// waitHealthy polls GET /health until it answers 200, OPA exits or healthTimeout passes.
func (s *Server) waitHealthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if healthy(ctx, client, s.URL+"/health") {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("opa exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("opa not healthy on %s after %v", s.addr, healthTimeout)
		case <-tick.C:
		}
	}
}

func healthy(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop terminates the running process, if any, and waits for it. s.mu must be held.
func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	// Signal errors mean the process has already exited; done is then closed.
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// freePort returns a loopback port that was free a moment ago. Another process
// may take it before OPA binds it; Start retries for that reason.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
