package dpop

import (
	"errors"
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/fault"
)

// Error codes of RFC 9449 section 7.1 and 9, and RFC 6750's invalid_token:
// the Code of every *fault.Error this package returns.
const (
	CodeInvalidProof = "invalid_dpop_proof" // the proof failed a check
	CodeUseNonce     = "use_dpop_nonce"     // the proof lacks the current nonce
	CodeInvalidToken = "invalid_token"      // the token cannot be used this way
)

// NonceHeader is the response header that carries a fresh nonce (RFC 9449
// section 8.1), on a use_dpop_nonce answer and, when the client's nonce is
// about to expire, on a success.
const NonceHeader = "DPoP-Nonce"

// ErrInvalidProof, ErrUseNonce and ErrInvalidToken are the causes (Err) of
// the *fault.Error values this package returns, one per code, so that a
// caller can tell them apart with errors.Is as well as by Code.
var (
	ErrInvalidProof = errors.New("invalid DPoP proof")
	ErrUseNonce     = errors.New("DPoP nonce required")
	ErrInvalidToken = errors.New("token not usable with this scheme")
)

// invalidProof is a proof that fails a check. The description never quotes
// the proof: it names the check.
func invalidProof(desc string) *fault.Error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: CodeInvalidProof, Description: desc, Err: ErrInvalidProof}
}

// useNonce asks the client to retry with nonce: 401 use_dpop_nonce with the
// nonce in a DPoP-Nonce header (carried as the Answer's header, which the
// error writer adds to the usual 401 and JSON body).
func useNonce(nonce string) *fault.Error {
	h := http.Header{}
	h.Set(NonceHeader, nonce)
	return &fault.Error{
		Kind:        fault.Unauthenticated,
		Code:        CodeUseNonce,
		Description: "Resource server requires nonce in DPoP proof",
		Err:         ErrUseNonce,
		Answer:      &fault.Answer{Header: h},
	}
}

func invalidToken(desc string) *fault.Error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: CodeInvalidToken, Description: desc, Err: ErrInvalidToken}
}

// Challenge is the DPoP challenge of RFC 9449 section 7.1 for an answer
// that refuses e: `DPoP algs="ES256 RS256"`, with error and
// error_description when e is a DPoP error (invalid_dpop_proof,
// use_dpop_nonce) or invalid_token, bare otherwise (no credentials). algs
// are the accepted algorithms.
//
// Where bearer tokens are also accepted (Mode Allowed), the answer carries
// a Bearer challenge too, without the error when the error is a DPoP one.
func Challenge(algs []string, e *fault.Error) string {
	c := `DPoP algs="` + strings.Join(algs, " ") + `"`
	if e != nil && e.Kind == fault.Unauthenticated && e.Code != "" {
		c += `, error="` + e.Code + `", error_description="` + fault.Quotable(e.Description) + `"`
	}
	return c
}
