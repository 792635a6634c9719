package k8s

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The values files the chart is proven with, besides its defaults
// (relative to the chart).
const (
	everythingOn   = "ci/everything-on-values.yaml"
	existingSecret = "ci/existing-secret-values.yaml"
)

func TestChartLint(t *testing.T) {
	for _, values := range []string{"", everythingOn, existingSecret} {
		t.Run(cmpName(values), func(t *testing.T) {
			args := []string{"lint", "--strict", Chart(t)}
			if values != "" {
				args = append(args, "-f", filepath.Join(Chart(t), values))
			}
			out, err := exec.Command(Helm(t), args...).CombinedOutput()
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

func cmpName(values string) string {
	if values == "" {
		return "defaults"
	}
	return strings.TrimSuffix(filepath.Base(values), "-values.yaml")
}

// rendered is one helm template's objects, by kind and name.
type rendered map[string]runtime.Object

func render(t *testing.T, args ...string) rendered {
	t.Helper()
	out, err := Render(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatalf("strict decoding of the rendered chart: %v", err)
	}
	r := rendered{}
	for _, o := range objs {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		name := o.(interface{ GetName() string }).GetName()
		if _, dup := r[kind+"/"+name]; dup {
			t.Fatalf("rendered twice: %s/%s", kind, name)
		}
		r[kind+"/"+name] = o
	}
	return r
}

func (r rendered) keys() []string { return slices.Sorted(maps.Keys(r)) }

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d, ok := r["Deployment/authgate"].(*appsv1.Deployment)
	if !ok {
		t.Fatalf("no Deployment/authgate in %v", r.keys())
	}
	return d
}

func container(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func env(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// TestChartDefaults: what a plain helm install renders, decoded strictly.
func TestChartDefaults(t *testing.T) {
	r := render(t)
	want := []string{"ConfigMap/authgate-policies", "Deployment/authgate", "Service/authgate",
		"Service/authgate-admin", "ServiceAccount/authgate"}
	if got := r.keys(); !slices.Equal(got, want) {
		t.Fatalf("rendered %v, want %v", got, want)
	}
	d := r.deployment(t)
	checkPod(t, d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	ag := container(t, d, "authgate")
	e := env(ag)
	for k, v := range map[string]string{
		"LISTEN_ADDR": ":8086", "ADMIN_ADDR": ":9086", "METRICS_ADDR": ":9090",
		"OPA_AUTHZ_URL": "http://127.0.0.1:8181/v1/data/demoapi/authz/allow",
	} {
		if e[k] != v {
			t.Errorf("env %s = %q, want %q", k, e[k], v)
		}
	}
	if _, ok := e["REDIS_URL"]; ok {
		t.Error("REDIS_URL set without redis.url")
	}
	if len(ag.EnvFrom) != 0 {
		t.Errorf("envFrom %v without a Secret", ag.EnvFrom)
	}
	if ag.Image != "authgate:dev" {
		t.Errorf("image %q, want authgate:dev (appVersion)", ag.Image)
	}
	if _, ok := d.Spec.Template.Annotations["checksum/policies"]; !ok {
		t.Error("no checksum/policies annotation")
	}
	for _, name := range []string{"authgate", "authgate-admin"} {
		if s := r["Service/"+name].(*corev1.Service); s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s type %s", name, s.Spec.Type)
		}
	}
	if sa := r["ServiceAccount/authgate"].(*corev1.ServiceAccount); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount mounts its token")
	}
}

// checkPod holds for every rendering: the restricted security context on
// every container, resources, probes on the admin port, OPA on loopback,
// the spread over nodes and zones.
func checkPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	p := d.Spec.Template.Spec
	if p.SecurityContext == nil || p.SecurityContext.RunAsNonRoot == nil || !*p.SecurityContext.RunAsNonRoot ||
		p.SecurityContext.SeccompProfile == nil || p.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", p.SecurityContext)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token")
	}
	if len(p.Containers) != 2 {
		t.Fatalf("%d containers, want authgate and opa", len(p.Containers))
	}
	for _, c := range p.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", c.Name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot,
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
			sc.Privileged == nil || *sc.Privileged,
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0,
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s: securityContext not restricted: %+v", c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v", c.Name, c.Resources)
		}
	}
	ag := container(t, d, "authgate")
	for name, pr := range map[string]*corev1.Probe{"liveness": ag.LivenessProbe, "readiness": ag.ReadinessProbe, "startup": ag.StartupProbe} {
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want || pr.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe %+v, want GET %s on the admin port", name, pr, want)
		}
	}
	opa := container(t, d, "opa")
	if !slices.ContainsFunc(opa.Args, func(a string) bool { return strings.HasPrefix(a, "--addr=127.0.0.1:") }) {
		t.Errorf("OPA does not listen on loopback only: %v", opa.Args)
	}
	if len(opa.Ports) != 0 {
		t.Errorf("OPA exposes ports %v", opa.Ports)
	}
	if len(p.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	for _, c := range p.TopologySpreadConstraints {
		if c.LabelSelector == nil || !maps.Equal(c.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("spread over %s selects %v, not the pods (%v)", c.TopologyKey, c.LabelSelector, d.Spec.Selector.MatchLabels)
		}
	}
}

// TestChartEverythingOn: every optional object, decoded strictly.
func TestChartEverythingOn(t *testing.T) {
	r := render(t, "-f", filepath.Join(Chart(t), everythingOn))
	want := []string{"ConfigMap/authgate-policies", "Deployment/authgate", "HorizontalPodAutoscaler/authgate",
		"NetworkPolicy/authgate", "PodDisruptionBudget/authgate", "Secret/authgate", "Service/authgate",
		"Service/authgate-admin", "ServiceAccount/authgate", "ServiceMonitor/authgate"}
	if got := r.keys(); !slices.Equal(got, want) {
		t.Fatalf("rendered %v, want %v", got, want)
	}
	d := r.deployment(t)
	checkPod(t, d)
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d set alongside the HorizontalPodAutoscaler", *d.Spec.Replicas)
	}
	ag := container(t, d, "authgate")
	if e := env(ag); e["REDIS_URL"] != "redis://redis.cache.svc:6379/0" || e["LOG_LEVEL"] != "debug" {
		t.Errorf("env %v", e)
	}
	if len(ag.EnvFrom) != 2 || ag.EnvFrom[0].SecretRef == nil || ag.EnvFrom[0].SecretRef.Name != "authgate" ||
		ag.EnvFrom[1].ConfigMapRef == nil {
		t.Errorf("envFrom %+v, want the chart's Secret then envFrom", ag.EnvFrom)
	}
	if !slices.ContainsFunc(ag.Env, func(e corev1.EnvVar) bool { return e.Name == "OTEL_SERVICE_NAME" && e.ValueFrom != nil }) {
		t.Error("extraEnv missing")
	}
	for _, k := range []string{"checksum/policies", "checksum/secret"} {
		if d.Spec.Template.Annotations[k] == "" {
			t.Errorf("no %s annotation", k)
		}
	}
	s := r["Secret/authgate"].(*corev1.Secret)
	for _, k := range []string{"OKTA_CLIENT_SECRET", "FLEET_KEY", "ADMIN_API_TOKEN"} {
		if len(s.Data[k]) == 0 {
			t.Errorf("Secret lacks %s", k)
		}
	}
	if hpa := r["HorizontalPodAutoscaler/authgate"].(*autoscalingv2.HorizontalPodAutoscaler); hpa.Spec.MaxReplicas != 12 || len(hpa.Spec.Metrics) != 2 {
		t.Errorf("HPA %+v", hpa.Spec)
	}
	if pdb := r["PodDisruptionBudget/authgate"].(*policyv1.PodDisruptionBudget); pdb.Spec.MaxUnavailable == nil || pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v: maxUnavailable must win", pdb.Spec)
	}
	sm := r["ServiceMonitor/authgate"].(*monitoringv1.ServiceMonitor)
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	admin := r["Service/authgate-admin"].(*corev1.Service)
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("the ServiceMonitor's selector is empty: it selects every Service, not the admin one")
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if admin.Labels[k] != v {
			t.Errorf("the ServiceMonitor's selector %v does not select the admin Service (%v)", sm.Spec.Selector.MatchLabels, admin.Labels)
		}
	}
	np := r["NetworkPolicy/authgate"].(*networkingv1.NetworkPolicy)
	if len(np.Spec.Ingress) != 3 || len(np.Spec.Egress) != 3 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy %+v", np.Spec)
	}
}

// TestChartExistingSecret: an existing Secret and ConfigMap are used, not rendered.
func TestChartExistingSecret(t *testing.T) {
	r := render(t, "-f", filepath.Join(Chart(t), existingSecret))
	want := []string{"Deployment/authgate", "Service/authgate", "Service/authgate-admin"}
	if got := r.keys(); !slices.Equal(got, want) {
		t.Fatalf("rendered %v, want %v", got, want)
	}
	d := r.deployment(t)
	checkPod(t, d)
	ag := container(t, d, "authgate")
	if len(ag.EnvFrom) != 1 || ag.EnvFrom[0].SecretRef == nil || ag.EnvFrom[0].SecretRef.Name != "authgate-secrets" {
		t.Errorf("envFrom %+v", ag.EnvFrom)
	}
	if v := d.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].ConfigMap == nil || v[0].ConfigMap.Name != "authgate-policies" {
		t.Errorf("volumes %+v", v)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "default" {
		t.Errorf("serviceAccountName %q", d.Spec.Template.Spec.ServiceAccountName)
	}
	if len(d.Spec.Template.Annotations) != 0 {
		t.Errorf("annotations %v: no checksum of objects the chart does not render", d.Spec.Template.Annotations)
	}
}

// TestChartRollsOnChange: a policy or secret change changes the pod
// template (checksum annotations), so the Deployment rolls.
func TestChartRollsOnChange(t *testing.T) {
	annotations := func(set ...string) map[string]string {
		args := []string{"--set", "secretEnv.OKTA_CLIENT_SECRET=a"}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		return render(t, args...).deployment(t).Spec.Template.Annotations
	}
	base := annotations("opa.policies.authz\\.rego=package a")
	for _, c := range []struct{ set, changes string }{
		{"opa.policies.authz\\.rego=package b", "checksum/policies"},
		{"secretEnv.OKTA_CLIENT_SECRET=b", "checksum/secret"},
	} {
		got := annotations("opa.policies.authz\\.rego=package a", c.set)
		if _, ok := base[c.changes]; !ok {
			t.Errorf("no %s annotation in %v", c.changes, base)
		}
		for k, v := range base {
			if changed := got[k] != v; changed != (k == c.changes) {
				t.Errorf("--set %s: %s changed = %v", c.set, k, changed)
			}
		}
	}
}

// TestChartRefuses: values.schema.json refuses wrong types and unknown
// keys, and the templates refuse inconsistent values, before anything is
// rendered.
func TestChartRefuses(t *testing.T) {
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicaCount=two"}, "replicaCount"},
		{[]string{"replicas=2"}, "replicas"},
		{[]string{"env.OKTA_TIMEOUT=3"}, "OKTA_TIMEOUT"}, // a number, not a string: use --set-string
		{[]string{"ports.traffic=http"}, "traffic"},
		{[]string{"ports.admin=70000"}, "admin"},
		{[]string{"podDisruptionBudget.enabled=yes"}, "enabled"},
		{[]string{"image.pullPolicy=Sometimes"}, "pullPolicy"},
		{[]string{"redis.url=http://redis:6379"}, "url"},
		{[]string{"opa.policies.authz\\.txt=x"}, "policies"},
		{[]string{"service.type=Internal"}, "type"},
		{[]string{"networkPolicy.trafficFrom=everyone"}, "trafficFrom"},
		{[]string{"redis.url=redis://redis:6379/0"}, "FLEET_KEY"},
		{[]string{"autoscaling.enabled=true", "autoscaling.targetCPUUtilizationPercentage=null"}, "targetCPUUtilizationPercentage"},
	} {
		t.Run(strings.Join(c.set, ","), func(t *testing.T) {
			var args []string
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			out, err := Render(t, args...)
			if err == nil {
				t.Fatalf("rendered:\n%s", out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not name %s:\n%v", c.want, err)
			}
		})
	}
}

// TestDecodeIsStrict: the decoder the chart is checked with refuses what the
// API server would: an unknown field, a wrong type, an unknown kind.
func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicass: 2}\n",
		"wrong type":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n",
		"nested field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targetPortt: 8080}]}\n",
		"duplicate":     "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ClusterIP, type: NodePort}\n",
		"unknown kind":  "apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n",
		"monitoring":    "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{prot: metrics}]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if objs, err := Decode([]byte("---\n" + doc)); err == nil {
				t.Errorf("decoded %s", fmt.Sprint(objs))
			}
		})
	}
	if objs, err := Decode([]byte("# Source: x\n---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n")); err != nil || len(objs) != 1 {
		t.Errorf("a valid Service: %v, %v", objs, err)
	}
}
