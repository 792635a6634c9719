package gateway

import rfc6750 "github.com/authgate/authgate/internal/bearer"

// MaxTokenBytes bounds a bearer token (package bearer).
const MaxTokenBytes = rfc6750.MaxTokenBytes
