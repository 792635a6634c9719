package app

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStaleLogIsBounded: an outage serving many stale answers logs the
// first at once, then at most one line per interval with the count since.
func TestStaleLogIsBounded(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	s := &staleLog{log: slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil)), interval: time.Hour}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s.served()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "served stale introspection answers"); n != 1 {
		t.Fatalf("%d lines for 800 stale answers within the interval, want 1:\n%s", n, out)
	}
	_, after, _ := strings.Cut(out, "count=")
	logged, err := strconv.Atoi(strings.TrimSpace(after))
	if err != nil || logged < 1 || logged+int(s.count.Load()) != 800 {
		t.Errorf("logged count %q and pending %d do not add up to 800", after, s.count.Load())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
