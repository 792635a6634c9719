// Package lograte keeps a log line that a fault repeats on every request to
// one line per interval, counting the ones it drops.
package lograte

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Every is the least time between two lines of one kind.
const Every = 10 * time.Second

// Limit lets one kind of line through at most once per Every. A wrong
// OPA_AUTHZ_URL, a policy that answers badly or refused client credentials
// do so for every request: a line each would flood the log under load. The
// next line that passes says in "suppressed" how many were dropped since
// the previous one. The zero value is ready to use; metrics, not this,
// count every occurrence.
type Limit struct {
	next       atomic.Int64 // unix nanos before which lines are dropped
	suppressed atomic.Int64
}

// Log writes msg at level unless a line of this kind passed within Every
// of now.
func (l *Limit) Log(log *slog.Logger, level slog.Level, now time.Time, msg string, args ...any) {
	n := l.next.Load()
	if now.UnixNano() < n || !l.next.CompareAndSwap(n, now.Add(Every).UnixNano()) {
		l.suppressed.Add(1)
		return
	}
	if s := l.suppressed.Swap(0); s > 0 {
		args = append(args, "suppressed", s)
	}
	log.Log(context.Background(), level, msg, args...)
}
