// Command minihop is the load tests' "minimal hop" baseline: the cheapest
// possible gateway of authgate's design, one HTTP hop plus one OPA decision.
// It posts one pre-encoded input document to OPA over a tuned keep-alive
// pool and answers 200 or 403. Not a product: a yardstick.
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	opaURL := flag.String("opa", "http://127.0.0.1:8181/v1/data/demoapi/authz/allow", "decision URL")
	inputFile := flag.String("input", "", "file holding the {\"input\": ...} document")
	flag.Parse()
	input, err := os.ReadFile(*inputFile)
	if err != nil {
		log.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 512
	client := &http.Client{Transport: tr}
	allow := []byte(`{"result":true}`)
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Post(*opaURL, "application/json", bytes.NewReader(input))
		if err != nil {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(bytes.TrimSpace(body), allow) {
			http.Error(w, `{"error":"access_denied"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"Hello there!!"}`))
	})))
}
