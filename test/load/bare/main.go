// Command bare is the load tests' ceiling: an Echo handler with no checks at
// all, answering what authgate's /sayhello answers.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/labstack/echo/v4"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	flag.Parse()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	body := []byte(`{"message":"Hello there!!"}`)
	e.GET("/sayhello", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) })
	log.Fatal(e.Start(*addr))
}
