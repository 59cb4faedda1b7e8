#!/usr/bin/env python3
"""Turns the chart's rendered manifests into what `podman kube play` runs,
changing only what podman cannot do as a cluster would:

- Services, the ServiceAccount, NetworkPolicies, HorizontalPodAutoscalers,
  PodDisruptionBudgets and ServiceMonitors are dropped: podman has no
  cluster network, API or operators to give them meaning.
- Every container reads /etc/hosts from a file beside OUT.yaml (hostPath,
  read-only) naming each Service (short name, .NAMESPACE, .NAMESPACE.svc,
  .NAMESPACE.svc.cluster.local) as 127.0.0.1: the pods share one network
  namespace, so a Service's port is the pod's port on loopback. (podman
  4.3 writes a pod's hostAliases only into its infra container's /etc/hosts
  when the pod is on the host network.)
- The pod IP (env fieldRef status.podIP, which podman 4.3 refuses) is
  127.0.0.1, the pods' shared loopback.
- Container ports are dropped: podman 4 publishes every containerPort on
  the host, which it refuses outside a bridge network ("PortMappings can
  only be used with Bridge or slirp4netns networking"); in Kubernetes they
  only document the ports (probes and Services here name numbers).
- Each emptyDir volume is named after its Deployment too (control-tmp…):
  podman 4.3 makes an emptyDir a named volume called as the pod's volume, so
  every pod's "tmp" would be one directory.
- The Secrets the chart expects to exist (EXTRA: Secret manifests) are added.
- The `helm test` hook pods go to TESTS.yaml (with --tests), adapted the
  same way, to be played once the release's pods serve, as `helm test` does.
- With --secret-volumes-as-configmaps (podman before 4.4, whose kube play
  crashes on a secret volume, containers/podman#16636), each secret volume,
  and each projected volume made of secrets, becomes a configMap volume with
  the same items and mode, over a ConfigMap holding the Secret's data.

Security contexts, probes, commands, environment, mount paths and claims
stay as rendered. Prints the podman volumes and secrets kube play will
create ("volume NAME", "secret NAME"), which `podman kube down` (4.3) leaves.

usage: kube_manifests.py [--secret-volumes-as-configmaps] [--tests TESTS.yaml] RENDERED.yaml OUT.yaml [EXTRA.yaml…]
"""

import base64
import os
import sys

import yaml

DROPPED = {"Service", "ServiceAccount", "NetworkPolicy", "HorizontalPodAutoscaler",
           "PodDisruptionBudget", "ServiceMonitor"}


def secret_data(secret):
    """A Secret's keys and values as text, from data (base64) and stringData."""
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def as_configmap_volume(volume, secrets):
    """The configMap volume standing in for a secret or projected volume."""
    if "secret" in volume:
        source = volume["secret"]
        name, items, mode = source["secretName"], source.get("items"), source.get("defaultMode")
    else:
        sources = volume["projected"]["sources"]
        if len(sources) != 1 or "secret" not in sources[0]:
            sys.exit(f"volume {volume['name']}: only a projected volume of one Secret is converted")
        name, items = sources[0]["secret"]["name"], sources[0]["secret"].get("items")
        mode = volume["projected"].get("defaultMode")
    if name not in secrets:
        sys.exit(f"volume {volume['name']}: no Secret {name} among the manifests")
    configmap = {"name": name}
    if items:
        configmap["items"] = items
    if mode is not None:
        configmap["defaultMode"] = mode
    return {"name": volume["name"], "configMap": configmap}


def main():
    arguments = sys.argv[1:]
    convert = arguments[:1] == ["--secret-volumes-as-configmaps"]
    if convert:
        arguments = arguments[1:]
    tests_out = None
    if arguments[:1] == ["--tests"]:
        tests_out, arguments = arguments[1], arguments[2:]
    rendered, out, extras = arguments[0], arguments[1], arguments[2:]
    documents = [d for d in yaml.safe_load_all(open(rendered)) if d]
    for extra in extras:
        documents += [d for d in yaml.safe_load_all(open(extra)) if d]

    aliases = ["localhost"]
    for service in (d for d in documents if d["kind"] == "Service"):
        name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
        aliases += [name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
                    f"{name}.{namespace}.svc.cluster.local"]
    secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
    hosts = os.path.join(os.path.dirname(os.path.abspath(out)), "hosts")
    with open(hosts, "w") as f:
        f.write(f"127.0.0.1\t{' '.join(aliases)}\n::1\tlocalhost\n")

    def is_test(document):
        return (document["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"

    played = [d for d in documents if d["kind"] not in DROPPED and not is_test(d)]
    tests = [d for d in documents if is_test(d)]
    used = set()
    for workload in played + tests:
        if workload["kind"] == "Deployment":
            pod = workload["spec"]["template"]["spec"]
        elif workload["kind"] == "Pod":
            pod = workload["spec"]
        else:
            continue
        pod.setdefault("volumes", []).append(
            {"name": "etc-hosts", "hostPath": {"path": hosts, "type": "File"}})
        for container in pod["containers"]:
            container.pop("ports", None)
            container.setdefault("volumeMounts", []).append(
                {"name": "etc-hosts", "mountPath": "/etc/hosts", "readOnly": True})
            for variable in container.get("env", []):
                if variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
                    variable["value"] = "127.0.0.1"
                    del variable["valueFrom"]
        renamed = {}
        for index, volume in enumerate(pod.get("volumes", [])):
            if "emptyDir" in volume:
                renamed[volume["name"]] = volume["name"] = f"{workload['metadata']['name']}-{volume['name']}"
            elif convert and ("secret" in volume or "projected" in volume):
                pod["volumes"][index] = as_configmap_volume(volume, secrets)
                used.add(pod["volumes"][index]["configMap"]["name"])
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                mount["name"] = renamed.get(mount["name"], mount["name"])
    for name in sorted(used):
        metadata = {k: v for k, v in secrets[name]["metadata"].items() if k in ("name", "namespace", "labels")}
        played.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                       "data": secret_data(secrets[name])})
    # Workloads last: kube play reads the ConfigMaps a pod mounts before it.
    played.sort(key=lambda d: d["kind"] == "Deployment")
    with open(out, "w") as f:
        yaml.safe_dump_all(played, f, sort_keys=False)
    if tests_out:
        with open(tests_out, "w") as f:
            yaml.safe_dump_all(tests, f, sort_keys=False)

    volumes = {d["metadata"]["name"] for d in played if d["kind"] in ("PersistentVolumeClaim", "ConfigMap")}
    for deployment in (d for d in played if d["kind"] == "Deployment"):
        volumes.update(v["name"] for v in deployment["spec"]["template"]["spec"].get("volumes", [])
                       if "emptyDir" in v)
    for name in sorted(volumes):
        print("volume", name)
    for name in sorted(secrets):
        print("secret", name)


if __name__ == "__main__":
    main()
