package soak

import (
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// Snapshot is the process's goroutines and live heap after a collection.
// Read it in the process that runs authgate (app.Run in-process).
type Snapshot struct {
	Goroutines int
	// Pooled are the goroutines of kept-alive HTTP connections (a client's
	// persistConn loops, a server's conn.serve): their number follows the
	// pools' sizes, which vary with the last burst, up to a bound.
	Pooled int
	Heap   uint64 // bytes, HeapAlloc after GC
}

// Other is every goroutine that is not a pooled connection's: the count
// that must come back to its baseline exactly.
func (s Snapshot) Other() int { return s.Goroutines - s.Pooled }

// Measure collects garbage and takes a Snapshot.
func Measure() Snapshot {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	s := Snapshot{Heap: m.HeapAlloc}
	_, profile, _ := strings.Cut(b.String(), "\n") // "goroutine profile: total N"
	for _, block := range strings.Split(profile, "\n\n") {
		n, _, ok := strings.Cut(block, " @ ")
		count, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue
		}
		s.Goroutines += count
		if strings.Contains(block, "net/http.(*persistConn).") || strings.Contains(block, "net/http.(*conn).serve") {
			s.Pooled += count
		}
	}
	return s
}

// Settle polls, for at most 10s, until Other is at most limit (connections
// a client closed take a moment to end on the server side) and returns the
// last Snapshot.
func Settle(limit int) Snapshot {
	deadline := time.Now().Add(10 * time.Second)
	s := Measure()
	for s.Other() > limit && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling interval
		s = Measure()
	}
	return s
}

// GoroutineDump is every goroutine's stack, for a failure message.
func GoroutineDump() string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// MiB is b in mebibytes.
func MiB(b uint64) float64 { return float64(b) / (1 << 20) }
