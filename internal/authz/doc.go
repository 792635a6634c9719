// Package authz is authgate's policy side: the OPA input contract (Input),
// the verdict (Decision), and the Decider that draws one, with OPA behind a
// circuit breaker and a decision cache as wrappers of the same interface.
package authz
