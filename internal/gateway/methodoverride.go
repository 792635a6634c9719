package gateway

import "github.com/authgate/authgate/internal/methodoverride"

// The method-override headers (package methodoverride).
var (
	isMethodOverride  = methodoverride.Is
	overriddenMethods = methodoverride.Methods
)
