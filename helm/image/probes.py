#!/usr/bin/env python3
"""Runs every container's startup, readiness and liveness probes from the
manifests kube play ran, as a kubelet would, against 127.0.0.1 (the pods'
shared loopback: run it in their network namespace), until all pass or
TIMEOUT seconds have gone. podman 4.3 turns only exec, httpGet and tcpSocket
probes into healthchecks and drops gRPC ones, which the chart uses.

usage: probes.py PLAYED.yaml TIMEOUT
"""

import socket
import sys
import time
import urllib.request

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

KINDS = ("startupProbe", "readinessProbe", "livenessProbe")


def check(probe):
    """None when the probe passes, else why not."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "grpc" in probe:
            with grpc.insecure_channel(f"127.0.0.1:{probe['grpc']['port']}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                    timeout=timeout)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return None if status == "SERVING" else status
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://127.0.0.1:{get['port']}{get.get('path', '/')}"
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                return None if 200 <= reply.status < 400 else f"HTTP {reply.status}"
        if "tcpSocket" in probe:
            socket.create_connection(("127.0.0.1", probe["tcpSocket"]["port"]), timeout).close()
            return None
        return f"unsupported probe {sorted(probe)}"
    except (grpc.RpcError, OSError) as error:
        return str(error.code() if isinstance(error, grpc.RpcError) else error)


def main():
    played, timeout = sys.argv[1], float(sys.argv[2])
    probes = []
    for deployment in (d for d in yaml.safe_load_all(open(played)) if d and d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for kind in KINDS:
                if kind in container:
                    probes.append((f"{deployment['metadata']['name']}/{container['name']} {kind}", container[kind]))
    if not probes:
        sys.exit("no probes in the manifests")
    deadline = time.monotonic() + timeout
    while True:
        failing = {name: why for name, probe in probes if (why := check(probe)) is not None}
        if not failing:
            break
        if time.monotonic() > deadline:
            sys.exit("probes failing after %gs: %s" % (timeout, "; ".join(f"{n}: {w}" for n, w in failing.items())))
        time.sleep(1)
    for name, probe in probes:
        target = probe.get("grpc") or probe.get("httpGet") or probe.get("tcpSocket")
        print(f"  {name} passes ({next(k for k in ('grpc', 'httpGet', 'tcpSocket') if k in probe)} port {target['port']})")


if __name__ == "__main__":
    main()
