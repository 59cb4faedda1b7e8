#!/usr/bin/env python3
"""Splits `helm template` output for helm/test.sh and checks what the
Kubernetes schemas cannot: the chart's secure pod defaults and gRPC probes,
each connector's transfer journal (its data_dir on the pod's data volume)
and drain (a grace period longer than its drain_timeout), and the shape of
ServiceMonitors (a CRD that kubernetes-validate has no schema for). Writes each manifest to its own file, CRDs apart, the
service configuration files the chart renders, and per component the
environment variables its Deployment takes from Secrets (env/<component>.json,
values resolved from the Secrets rendered alongside; null for an existing
Secret the chart does not render).

usage: manifests.py RENDERED.yaml OUT_DIR
"""

import json
import os
import re
import sys

import yaml

CRD_API_GROUPS = ("monitoring.coreos.com/",)
SERVICE_MONITOR_SPEC = {"selector", "namespaceSelector", "endpoints", "jobLabel"}
SERVICE_MONITOR_ENDPOINT = {"port", "path", "interval", "scheme", "scrapeTimeout", "tlsConfig"}
SERVICE_MONITOR_TLS = {"ca", "serverName"}
# The configuration file each component reads, by the object that carries it.
CONFIG_FILES = {
    ("ConfigMap", "-control", "control.yaml"): "control",
    ("ConfigMap", "-queue", "queue.yaml"): "queue",
    ("Secret", "-sip-config", "sip.yaml"): "sip",
    ("ConfigMap", "-webhook", "webhook.yaml"): "webhook",
    ("ConfigMap", "-twilio", "twilio.yaml"): "twilio",
    ("ConfigMap", "-amazon-connect", "amazon-connect.yaml"): "amazon-connect",
}


def fail(message):
    print(f"manifests.py: {message}", file=sys.stderr)
    sys.exit(1)


def check_secure(name, pod):
    security = pod.get("securityContext", {})
    if security.get("runAsNonRoot") is not True:
        fail(f"{name}: pod securityContext.runAsNonRoot is not true")
    if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{name}: pod seccompProfile is not RuntimeDefault")
    for container in pod["containers"]:
        where = f"{name}/{container['name']}"
        context = container.get("securityContext", {})
        if context.get("readOnlyRootFilesystem") is not True:
            fail(f"{where}: root filesystem is not read-only")
        if context.get("allowPrivilegeEscalation") is not False:
            fail(f"{where}: privilege escalation is not off")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{where}: capabilities are not all dropped")


def check_test_pod(name, doc):
    """The `helm test` hook: secure like the services, each container a
    `baton health` of one component."""
    if doc["metadata"].get("annotations", {}).get("helm.sh/hook") != "test":
        fail(f"{name}: a Pod that is not a helm test hook")
    check_secure(name, doc["spec"])
    for container in doc["spec"]["containers"]:
        if container.get("command", [])[:3] != ["baton", "health", "--endpoint"]:
            fail(f"{name}/{container['name']}: not a `baton health --endpoint …` check")


def check_pod(name, pod):
    check_secure(name, pod)
    for container in pod["containers"]:
        where = f"{name}/{container['name']}"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "grpc" not in container.get(probe, {}):
                fail(f"{where}: {probe} is not a gRPC (grpc.health.v1) probe")
        if not container.get("command", [""])[0].startswith("baton-"):
            fail(f"{where}: the command does not start a Baton binary")


def seconds(duration):
    """A drain_timeout the chart renders ("30s") in seconds."""
    match = re.fullmatch(r"([0-9]+)s", str(duration))
    if match is None:
        fail(f"drain_timeout {duration!r} is not a number of seconds")
    return int(match.group(1))


def check_journal(name, deployment, config, claims):
    """A connector's store.data_dir (from its file, or --data-dir when the
    file is not the chart's) is the mount of an emptyDir or of a claim the
    chart renders (or names); with a claim the pod runs alone, Recreate; the
    pod's grace period outlasts its server.drain_timeout."""
    pod = deployment["spec"]["template"]["spec"]
    main = pod["containers"][0]
    command = main["command"]
    if config is not None:
        data_dir = config.get("store", {}).get("data_dir")
    elif "--data-dir" in command:
        data_dir = command[command.index("--data-dir") + 1]
    else:
        data_dir = None
    if not data_dir:
        fail(f"{name}: no data_dir: the connector would keep no transfer journal")
    mounts = {m["mountPath"]: m["name"] for m in main.get("volumeMounts", [])}
    if data_dir not in mounts:
        fail(f"{name}: data_dir {data_dir} is not a mounted volume (mounts: {sorted(mounts)})")
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[data_dir])
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        if claim.endswith("-data") and claim not in claims:
            fail(f"{name}: data_dir on claim {claim}, which is not rendered")
        if deployment["spec"].get("replicas") != 1 or deployment["spec"]["strategy"]["type"] != "Recreate":
            fail(f"{name}: a journal on a claim needs 1 replica and the Recreate strategy")
    elif volume.get("emptyDir") != {}:
        fail(f"{name}: data_dir {data_dir} is on neither an emptyDir nor a claim: {volume}")
    if config is not None:
        drain = seconds(config.get("server", {}).get("drain_timeout"))
        grace = pod.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int) or grace <= drain:
            fail(f"{name}: terminationGracePeriodSeconds {grace} does not outlast drain_timeout {drain}s")


def check_service_monitor(name, doc):
    spec = doc.get("spec", {})
    extra = set(spec) - SERVICE_MONITOR_SPEC
    if extra:
        fail(f"{name}: unknown ServiceMonitor spec keys {sorted(extra)}")
    if not spec.get("selector", {}).get("matchLabels"):
        fail(f"{name}: ServiceMonitor selects no Service")
    for endpoint in spec.get("endpoints") or fail(f"{name}: no endpoints"):
        extra = set(endpoint) - SERVICE_MONITOR_ENDPOINT
        if extra or not isinstance(endpoint.get("port"), str):
            fail(f"{name}: bad ServiceMonitor endpoint {endpoint}")
        tls = endpoint.get("tlsConfig")
        if tls is not None and (set(tls) - SERVICE_MONITOR_TLS
                                or set(tls["ca"]["secret"]) != {"name", "key"}
                                or endpoint.get("scheme") != "https"):
            fail(f"{name}: bad ServiceMonitor tlsConfig {tls}")


def secret_env(deployment, secrets):
    """The container's variables that come from a Secret's key, resolved."""
    found = []
    for variable in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        data = secrets.get(ref["name"])
        found.append({
            "name": variable["name"], "secret": ref["name"], "key": ref["key"],
            "optional": ref.get("optional", False),
            "value": None if data is None else data.get(ref["key"]),
        })
    return found


def main():
    rendered, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(out, "manifests"), exist_ok=True)
    os.makedirs(os.path.join(out, "crds"), exist_ok=True)
    os.makedirs(os.path.join(out, "config"), exist_ok=True)
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if not docs:
        fail(f"{rendered}: nothing rendered")
    kinds = set()
    for i, doc in enumerate(docs):
        kind, name = doc["kind"], doc["metadata"]["name"]
        kinds.add(kind)
        crd = doc["apiVersion"].startswith(CRD_API_GROUPS)
        directory = "crds" if crd else "manifests"
        path = os.path.join(out, directory, f"{i:02d}-{kind.lower()}-{name}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(doc, f)
        if kind == "ServiceMonitor":
            check_service_monitor(name, doc)
        elif crd:
            fail(f"{name}: no check for {doc['apiVersion']} {kind}")
        if kind == "Deployment":
            check_pod(name, doc["spec"]["template"]["spec"])
        elif kind == "Pod":
            check_test_pod(name, doc)
        for (config_kind, suffix, key), component in CONFIG_FILES.items():
            data = doc.get("data", {}) if kind == "ConfigMap" else doc.get("stringData", {})
            if kind == config_kind and name.endswith(suffix) and key in data:
                with open(os.path.join(out, "config", f"{component}.yaml"), "w") as f:
                    f.write(data[key])
    os.makedirs(os.path.join(out, "env"), exist_ok=True)
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d["kind"] == "Secret"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for doc in docs:
        if doc["kind"] == "Deployment":
            component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
            with open(os.path.join(out, "env", f"{component}.json"), "w") as f:
                json.dump(secret_env(doc, secrets), f, indent=1)
            if component != "control":
                path = os.path.join(out, "config", f"{component}.yaml")
                config = None
                if os.path.exists(path):
                    with open(path) as f:
                        config = yaml.safe_load(f)
                check_journal(doc["metadata"]["name"], doc, config, claims)
    for needed in ("Deployment", "Service", "ConfigMap", "ServiceAccount"):
        if needed not in kinds:
            fail(f"{rendered}: no {needed} rendered")


if __name__ == "__main__":
    main()
