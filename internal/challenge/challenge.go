// Package challenge writes the WWW-Authenticate challenges of authgate's
// 401s (and of a policy's own 401): the Bearer one (RFC 6750 section 3),
// the DPoP one (RFC 9449 section 7.1) when DPoP is on, each with the
// resource_metadata parameter (RFC 9728) when a resource is protected.
package challenge

import (
	"net/http"

	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/fault"
)

// Realm is the realm of authgate's challenges.
const Realm = "authgate"

// Set says what the challenges of a 401 carry beyond its error. Its zero
// value writes the bare Bearer challenge.
type Set struct {
	// ResourceMetadata is the resource_metadata parameter (RFC 9728), or "".
	ResourceMetadata string
	// DPoPAlgs (DPOP_ALGORITHMS), when set, put a DPoP challenge (RFC 9449
	// section 7.1) next to the Bearer one.
	DPoPAlgs []string
	// DPoPOnly (DPOP_MODE=required) leaves the Bearer challenge out of the
	// answer to a failed proof: bearer tokens are not accepted there.
	DPoPOnly bool
}

// Write writes e's challenges: the Bearer one (RFC 6750 section 3), and with
// DPoP on the DPoP one. A proof's error (invalid_dpop_proof,
// use_dpop_nonce) is the DPoP challenge's, which then comes first, with a
// bare Bearer challenge where bearer tokens are accepted; any other error
// is the Bearer challenge's, with a bare DPoP one after it.
func (ch Set) Write(h http.Header, e *fault.Error) {
	h.Del("WWW-Authenticate")
	if len(ch.DPoPAlgs) == 0 {
		h.Set("WWW-Authenticate", bearer(e, ch.ResourceMetadata))
		return
	}
	dp := dpop.Challenge(ch.DPoPAlgs, nil)
	if e.Code == dpop.CodeInvalidProof || e.Code == dpop.CodeUseNonce {
		dp = dpop.Challenge(ch.DPoPAlgs, e)
		if ch.ResourceMetadata != "" {
			dp += ", " + ch.ResourceMetadata
		}
		h.Add("WWW-Authenticate", dp)
		if !ch.DPoPOnly {
			h.Add("WWW-Authenticate", bearer(&fault.Error{Kind: fault.NoToken}, ch.ResourceMetadata))
		}
		return
	}
	if ch.ResourceMetadata != "" {
		dp += ", " + ch.ResourceMetadata
	}
	h.Add("WWW-Authenticate", bearer(e, ch.ResourceMetadata))
	h.Add("WWW-Authenticate", dp)
}

// bearer builds an RFC 6750 section 3 challenge. A request with no
// credentials gets the bare realm; others name the error. resourceMetadata
// (the resource_metadata parameter, or "") comes last.
func bearer(e *fault.Error, resourceMetadata string) string {
	c := `Bearer realm="` + Realm + `"`
	if e.Kind != fault.NoToken && e.Code != "" {
		c += `, error="` + e.Code + `", error_description="` + fault.Quotable(e.Description) + `"`
	}
	if resourceMetadata != "" {
		c += ", " + resourceMetadata
	}
	return c
}
