package app

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// staleLog logs answers served stale (CACHE_STALE_IF_ERROR): the first at
// once, then at most one line per interval with the count since, so an
// outage does not flood the log.
type staleLog struct {
	log      *slog.Logger
	interval time.Duration
	count    atomic.Int64 // since the last line
	last     atomic.Int64 // unix nanos of the last line
}

func (s *staleLog) served() {
	n := s.count.Add(1)
	now := time.Now().UnixNano()
	last := s.last.Load()
	if now-last < int64(s.interval) || !s.last.CompareAndSwap(last, now) {
		return
	}
	n = s.count.Swap(0)
	s.log.Warn("served stale introspection answers: the authorization server is unavailable (CACHE_STALE_IF_ERROR)", "count", n)
}
