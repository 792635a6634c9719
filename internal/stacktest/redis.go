package stacktest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
			<-exited // its output is complete: the caller reports r.out
			r.cmd = nil
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

// HostileRedis speaks just enough RESP (version 2) for go-redis, and
// answers as a hostile or confused Redis might: every claim (a script call
// with three keys and two arguments) with Claim, every budget call (one
// key, two arguments) with Budget when set, SUBSCRIBE as Redis does, and
// anything else with :0. Replies are raw RESP (Bulk helps).
type HostileRedis struct {
	Addr string // 127.0.0.1:PORT
	URL  string // redis://127.0.0.1:PORT/0

	claim, budget string
	claims        atomic.Int64
	ln            net.Listener
	mu            sync.Mutex
	conns         map[net.Conn]bool
	wg            sync.WaitGroup
}

// StartHostileRedis serves until the test ends.
func StartHostileRedis(tb testing.TB, claim, budget string) *HostileRedis {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := &HostileRedis{Addr: ln.Addr().String(), claim: claim, budget: budget, ln: ln, conns: map[net.Conn]bool{}}
	h.URL = "redis://" + h.Addr + "/0"
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns[c] = true
			h.mu.Unlock()
			h.wg.Add(1)
			go func() { defer h.wg.Done(); h.serve(c) }()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

// Claims is the number of claims asked so far.
func (h *HostileRedis) Claims() int64 { return h.claims.Load() }

// Bulk is s as a RESP bulk string.
func Bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

func (h *HostileRedis) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		cmd, err := readCommand(r)
		if err != nil {
			return
		}
		var reply string
		script := func(keys string, n int) bool {
			name := strings.ToUpper(cmd[0])
			return (name == "EVALSHA" || name == "EVAL") && len(cmd) == n && cmd[2] == keys
		}
		switch name := strings.ToUpper(cmd[0]); {
		case name == "HELLO":
			reply = "-ERR unknown command 'HELLO'\r\n"
		case name == "CLIENT", name == "PING":
			reply = "+OK\r\n"
		case name == "SUBSCRIBE" && len(cmd) == 2:
			reply = "*3\r\n" + Bulk("subscribe") + Bulk(cmd[1]) + ":1\r\n"
		case script("3", 8):
			h.claims.Add(1)
			reply = h.claim
		case script("1", 6) && h.budget != "":
			reply = h.budget
		default:
			reply = ":0\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 64 {
		return nil, errors.New("bad array")
	}
	out := make([]string, n)
	for i := range out {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "$") {
			return nil, errors.New("not a bulk string")
		}
		size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || size < 0 || size > 1<<20 {
			return nil, errors.New("bad bulk string")
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		out[i] = string(b[:size])
	}
	return out, nil
}
