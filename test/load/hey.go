package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// result is one scenario's measurements.
type result struct {
	name           string
	requests       int
	concurrency    int
	rps            float64
	p50, p99       float64 // seconds
	statuses       map[int]int
	errors         int
	introspections int // -1 when not measured
}

type hey struct{ bin string }

func (h hey) run(ctx context.Context, args []string) (result, error) {
	out, err := exec.CommandContext(ctx, h.bin, args...).Output()
	if err != nil {
		return result{}, fmt.Errorf("hey: %w", err)
	}
	r, err := parseHey(string(out))
	if err != nil {
		return result{}, err
	}
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-n":
			r.requests, _ = strconv.Atoi(args[i+1])
		case "-c":
			r.concurrency, _ = strconv.Atoi(args[i+1])
		}
	}
	return r, nil
}

var (
	heyRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	heyLatency = regexp.MustCompile(`^\s*(\d+)%{1,2} in ([0-9.]+) secs`)
	heyStatus  = regexp.MustCompile(`^\s*\[(\d+)\]\s+(\d+) responses`)
	heyError   = regexp.MustCompile(`^\s*\[(\d+)\]`)
)

// parseHey reads hey's text report. hey v0.1.5 prints latency lines as
// "50%% in 0.0009 secs" (a doubled percent sign); both forms are read. hey
// exits 0 even when requests fail, so the status lines are what counts.
func parseHey(out string) (result, error) {
	r := result{statuses: map[int]int{}}
	m := heyRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in hey's output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Status code distribution:"):
			section = "status"
		case strings.HasPrefix(line, "Error distribution:"):
			section = "error"
		case section == "status":
			if m := heyStatus.FindStringSubmatch(line); m != nil {
				code, _ := strconv.Atoi(m[1])
				n, _ := strconv.Atoi(m[2])
				r.statuses[code] += n
			}
		case section == "error":
			if m := heyError.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				r.errors += n
			}
		default:
			if m := heyLatency.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseFloat(m[2], 64)
				switch m[1] {
				case "50":
					r.p50 = v
				case "99":
					r.p99 = v
				}
			}
		}
	}
	return r, nil
}
