package devidp

import (
	"sync"
	"time"
)

// rateLimiter counts requests in fixed windows aligned to the UTC minute,
// like Okta's per-minute buckets.
type rateLimiter struct {
	limit int

	mu    sync.Mutex
	start time.Time // start of the current window
	count int       // requests in the current window, including rejected ones
}

// take records a request at now and returns the number of requests left in
// the window, the end of the window, and whether the request is allowed.
func (l *rateLimiter) take(now time.Time) (remaining int, reset time.Time, ok bool) {
	start := now.Truncate(time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !start.Equal(l.start) {
		l.start, l.count = start, 0
	}
	l.count++
	return max(l.limit-l.count, 0), start.Add(time.Minute), l.count <= l.limit
}
