"""What helm/test.sh's checks read from a rendered scenario, as split by
manifests.py into WORK/<scenario>/: the configuration files, the manifests
by kind and component, and the variables each pod takes from Secrets."""

import glob
import json
import sys

import yaml

WORK = sys.argv[1] if len(sys.argv) > 1 else "."


def config(scenario, component):
    """The configuration file the component's pods read."""
    with open(f"{WORK}/{scenario}/config/{component}.yaml") as f:
        return yaml.safe_load(f)


def manifests(scenario, kind):
    """The scenario's objects of one kind (CRDs included) by component."""
    found = {}
    for path in glob.glob(f"{WORK}/{scenario}/*/*-{kind.lower()}-*.yaml"):
        with open(path) as f:
            doc = yaml.safe_load(f)
        found[doc["metadata"]["labels"]["app.kubernetes.io/component"]] = doc
    return found


def deployments(scenario):
    return manifests(scenario, "Deployment")


def container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env(deployment):
    """A Deployment's plain variables (None for those from a reference)."""
    return {e["name"]: e.get("value") for e in container(deployment).get("env", [])}


def secret_env(scenario, component):
    """The variables the component's pods take from Secrets, by name."""
    with open(f"{WORK}/{scenario}/env/{component}.json") as f:
        return {v["name"]: v for v in json.load(f)}


def expect(what, actual, wanted):
    if actual != wanted:
        sys.exit(f"{what}: {actual!r}, expected {wanted!r}")
