package proxy

import (
	"net/http"
	"testing"
)

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream": true, "text/event-stream; charset=utf-8": true, "Text/Event-Stream ;x=1": true,
		"": false, "text/plain": false, "application/json": false, "text/event-streams": false,
	} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		if got := isEventStream(h); got != want {
			t.Errorf("isEventStream(%q) = %v", ct, got)
		}
	}
}
