package lograte

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	var l Limit
	now := time.Unix(1_700_000_000, 0)
	for range 5 {
		l.Log(log, slog.LevelWarn, now, "x")
	}
	l.Log(log, slog.LevelError, now.Add(Every-time.Nanosecond), "x")
	l.Log(log, slog.LevelError, now.Add(Every), "x")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		s, _ := m["suppressed"].(float64)
		got = append(got, m["level"].(string)+" "+strings.Repeat("+", int(s)))
	}
	if want := []string{"WARN ", "ERROR +++++"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
}
