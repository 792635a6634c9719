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

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// Realm is the realm of authgate's WWW-Authenticate challenges.
const Realm = "authgate"

// defaultRetryAfter is sent with a 503 when the upstream named no time.
const defaultRetryAfter = 2 * time.Second

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// errorHandler maps an error to its status, headers and JSON body. It is
// the only place that does.
func errorHandler(log *slog.Logger, now func() time.Time) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var pa *policyAnswer
		if errors.As(err, &pa) {
			if err := pa.write(c); err != nil {
				log.Debug("writing policy answer", "err", err)
			}
			return
		}
		status, body := http.StatusInternalServerError, errorBody{Error: "internal_error", ErrorDescription: "internal error"}
		h := c.Response().Header()
		var fe *fault.Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &fe):
			status, body = faultAnswer(fe, h, now)
			switch {
			case errors.Is(fe, authn.ErrAssertionRejected):
				log.Error("authorization server rejected authgate's client assertion: check OKTA_CLIENT_ID, OKTA_PRIVATE_KEY_FILE and OKTA_PRIVATE_KEY_ID (the key registered for the client), OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL", "err", fe.Err)
			case errors.Is(fe, authn.ErrMisconfigured):
				log.Error("authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL", "err", fe.Err)
			case fe.Kind == fault.Internal:
				log.Error("internal error", "err", fe)
			}
		case errors.As(err, &he):
			status = he.Code
			body = errorBody{Error: strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))}
			if m, ok := he.Message.(string); ok {
				body.ErrorDescription = m
			}
		default:
			log.Error("internal error", "err", err)
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil {
			log.Debug("writing error answer", "err", err)
		}
	}
}

func faultAnswer(e *fault.Error, h http.Header, now func() time.Time) (int, errorBody) {
	body := errorBody{Error: e.Code, ErrorDescription: e.Description}
	switch e.Kind {
	case fault.BadRequest:
		h.Set("WWW-Authenticate", challenge(e))
		return http.StatusBadRequest, body
	case fault.Unauthenticated:
		h.Set("WWW-Authenticate", challenge(e))
		if body.Error == "" {
			body.Error = "unauthorized"
		}
		return http.StatusUnauthorized, body
	case fault.Forbidden:
		return http.StatusForbidden, body
	case fault.Unavailable:
		h.Set("Retry-After", retryAfterSeconds(e.RetryAfter, now()))
		return http.StatusServiceUnavailable, body
	}
	return http.StatusInternalServerError, errorBody{Error: "internal_error", ErrorDescription: "internal error"}
}

// challenge builds an RFC 6750 section 3 challenge. A request with no
// credentials gets the bare realm; others name the error.
func challenge(e *fault.Error) string {
	if e.Code == "" {
		return `Bearer realm="` + Realm + `"`
	}
	return `Bearer realm="` + Realm + `", error="` + e.Code + `", error_description="` + quotable(e.Description) + `"`
}

// quotable keeps what RFC 6750 allows in error_description: printable ASCII
// without '"' and '\'.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

func retryAfterSeconds(until, now time.Time) string {
	d := defaultRetryAfter
	if !until.IsZero() {
		d = until.Sub(now)
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
