package stacktest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// FleetKey is the FLEET_KEY of the replicas the tests start: REDIS_URL
// requires one.
const FleetKey = "stacktest-fleet-key-0123456789abcdefghijklmnop"

// Redis is a real redis-server on a loopback port, owned by one test.
type Redis struct {
	Addr string // 127.0.0.1:PORT
	URL  string // redis://127.0.0.1:PORT/0
	bin  string
	dir  string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	tb   testing.TB
}

// redisBinary finds redis-server. Without it the test skips on a
// developer's machine but fails in CI (CI=true), where make test installs
// it (Debian's redis-server package).
func redisBinary(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("redis-server is not installed, and CI=true: make test installs it (apt-get install redis-server) when run as root")
	}
	tb.Skip("redis-server is not installed (apt-get install redis-server): skipping the tests of the shared tier")
	return ""
}

// StartRedis runs redis-server on a free loopback port, without
// persistence, until the test ends; it returns once Redis answers PING.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	r := &Redis{bin: redisBinary(tb), dir: tb.TempDir(), tb: tb}
	var err error
	for range 3 { // a free port may be taken before redis-server binds it
		ln, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			tb.Fatal(lerr)
		}
		r.Addr = ln.Addr().String()
		ln.Close()
		if err = r.start(); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redis-server: %v\n%s", err, r.out)
	}
	r.URL = "redis://" + r.Addr + "/0"
	tb.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	r.out = &bytes.Buffer{}
	r.cmd = exec.Command(r.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no", "--loglevel", "warning")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			r.cmd = nil
			return err
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			go func() { <-exited }()
			return nil
		}
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			return err
		}
		time.Sleep(10 * time.Millisecond) // polling interval of the readiness check
	}
}

// Stop kills redis-server (SIGKILL: an outage, not a shutdown). It is
// idempotent and runs when the test ends.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	for i := 0; i < 500; i++ { // until the port is free again
		c, err := net.DialTimeout("tcp", r.Addr, 50*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	r.cmd = nil
}

// Restart starts redis-server again on the same port, empty.
func (r *Redis) Restart() {
	r.tb.Helper()
	r.Stop()
	var err error
	for range 50 { // the port may linger briefly
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.tb.Fatalf("redis-server restart on %s: %v\n%s", r.Addr, err, r.out)
}

// Client is a go-redis client of this server, closed when the test ends.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	r.tb.Cleanup(func() { c.Close() })
	return c
}

// Port is the server's port.
func (r *Redis) Port() int {
	_, p, _ := net.SplitHostPort(r.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
