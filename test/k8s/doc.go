// Package k8s checks what authgate ships to Kubernetes: the Helm chart in
// deploy/helm/authgate rendered and decoded strictly against the Kubernetes
// API types, the container image run under podman, and the chart's
// Deployment run under `podman kube play`.
//
// It is a module of its own so that the root module's `go test ./...` never
// compiles k8s.io/api. The Makefile runs it: make test-chart (no containers)
// and make test-image (podman); make k8s-check runs cmd/k8scheck against a
// real kube-apiserver. Tools come from the environment the Makefile sets:
// HELM (bin/helm), IMAGE and OPA_IMAGE (make image, make opa-image), OPA_BIN.
package k8s
