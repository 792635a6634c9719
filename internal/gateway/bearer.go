package gateway

import rfc6750 "github.com/authgate/authgate/internal/bearer"

// MaxTokenBytes bounds a bearer token (package bearer).
const MaxTokenBytes = rfc6750.MaxTokenBytes

// credentials are the request's scheme (Bearer or DPoP) and token
// (package bearer).
var credentials = rfc6750.Credentials
