package gateway

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/challenge"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/resource"
)

// defaultRetryAfter is sent with a 503 when the upstream named no time.
const defaultRetryAfter = 2 * time.Second

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// errorHandler answers an error: a *fault.Error as its kind's row of the
// fault table says (status, challenge, Retry-After, JSON body), or as the
// policy shaped it; Echo's own errors (no route, 405) with their status.
// It is the only place that writes error answers. ch says what every
// challenge carries beyond its error: the resource_metadata parameter (RFC
// 9728), the DPoP challenge (RFC 9449).
func errorHandler(log *slog.Logger, now func() time.Time, ch challenge.Set) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var fe *fault.Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &fe):
			if fe.Kind == fault.Internal {
				log.Error("internal error", "err", fe)
			}
		case errors.As(err, &he):
			body := errorBody{Error: statusCode(he.Code)}
			if m, ok := he.Message.(string); ok {
				body.ErrorDescription = m
			}
			err = writeJSON(c, he.Code, body)
			if err != nil {
				log.Debug("writing error answer", "err", err)
			}
			return
		default:
			log.Error("internal error", "err", err)
			fe = &fault.Error{Kind: fault.Internal}
		}
		if err := writeFault(c, fe, now(), ch); err != nil {
			log.Debug("writing error answer", "err", err)
		}
	}
}

// writeFault writes e's answer. The resource_metadata challenge parameter
// (ch.ResourceMetadata, or "") goes into every challenge, a policy's own
// 401 and 403 ones included.
func writeFault(c echo.Context, e *fault.Error, now time.Time, ch challenge.Set) error {
	resourceMetadata := ch.ResourceMetadata
	h := c.Response().Header()
	status := e.Kind.Status()
	body := errorBody{Error: e.ErrorCode(), ErrorDescription: e.Description}
	switch e.Kind {
	case fault.Internal:
		body.ErrorDescription = "internal error" // never the cause
	case fault.Unavailable:
		h.Set("Retry-After", retryAfterSeconds(e.RetryAfter, now))
	}
	if e.Kind.Challenges() {
		ch.Write(h, e)
	}
	a := e.Answer
	if a == nil {
		return writeJSON(c, status, body)
	}
	// A deny the policy shaped: its status, headers and body.
	addHeaders(h, a.Header)
	if a.Status != 0 && a.Status != status {
		status, body = a.Status, errorBody{Error: statusCode(a.Status)}
	}
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		ch.Write(h, &fault.Error{Kind: fault.NoToken})
	}
	if resourceMetadata != "" && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		resource.AddParam(h, resourceMetadata) // the policy's own challenge (insufficient_scope)
	}
	if a.Body == nil || c.Request().Method == http.MethodHead {
		return writeJSON(c, status, body)
	}
	ct := h.Get(echo.HeaderContentType)
	if ct == "" {
		ct = a.BodyType
	}
	return c.Blob(status, ct, a.Body)
}

// writeJSON writes body as JSON, or only the status for HEAD.
func writeJSON(c echo.Context, status int, body errorBody) error {
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return c.JSON(status, body)
}

// statusCode is the error code of a status that has no fault of its own:
// its text in snake case ("not_found").
func statusCode(status int) string {
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

func retryAfterSeconds(until, now time.Time) string {
	d := defaultRetryAfter
	if !until.IsZero() {
		d = until.Sub(now)
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
