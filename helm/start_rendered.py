#!/usr/bin/env python3
"""Starts a Baton binary on a configuration file the chart rendered, with
only the pod-specific paths and addresses moved to loopback and a temporary
directory, waits for its readiness line, sends SIGTERM and expects exit 0:
the rendered file really starts the service, not only passes its check.

usage: start_rendered.py BIN_DIR COMPONENT CONFIG.yaml WORK_DIR
"""

import os
import select
import signal
import subprocess
import sys
import time

import yaml

BINARIES = {
    "control": "baton-control",
    "queue": "baton-connector-queue",
    "sip": "baton-connector-sip",
}


def dev_certificates(bin_dir, work):
    """A throwaway CA, server and client certificate from `baton dev-ca`,
    standing in for the TLS Secret mounted in the pod."""
    directory = os.path.join(work, "tls")
    subprocess.run([os.path.join(bin_dir, "baton"), "dev-ca", directory],
                   check=True, stdout=subprocess.DEVNULL)
    return {name: os.path.join(directory, f"{name}.pem")
            for name in ("ca", "server", "server-key", "client", "client-key")}


def localize_tls(config, certificates):
    """Points [tls] and [connector_tls] at the throwaway certificates."""
    files = {"cert_file": "server", "key_file": "server-key", "client_ca_file": "ca"}
    for key in list(config.get("tls") or {}):
        if key in files:
            config["tls"][key] = certificates[files[key]]
    files = {"ca_file": "ca", "cert_file": "client", "key_file": "client-key"}
    for key in list(config.get("connector_tls") or {}):
        if key in files:
            config["connector_tls"][key] = certificates[files[key]]


def localize(component, config, work, bin_dir):
    """Moves what only exists in the pod (0.0.0.0 ports, mounted volumes)
    or in the cluster (the OTLP collector)."""
    loopback = "127.0.0.1:0"
    config.get("telemetry", {}).pop("otlp_endpoint", None)
    if "tls" in config or "connector_tls" in config:
        localize_tls(config, dev_certificates(bin_dir, work))
    if component == "control":
        config["server"]["grpc_listen"] = loopback
        config["server"]["http_listen"] = loopback
        key = os.path.join(work, "context-token.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        config["store"] = {"data_dir": os.path.join(work, "data"), "token_key_file": key}
    elif component == "queue":
        config["grpc_listen"] = loopback
        config["http_listen"] = loopback
        config["data_dir"] = os.path.join(work, "data")
    elif component == "sip":
        config["listen"] = loopback
        config["sip"]["bind"] = loopback
    return config


def main():
    bin_dir, component, source, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    with open(source) as f:
        config = localize(component, yaml.safe_load(f), work, bin_dir)
    path = os.path.join(work, f"{component}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    process = subprocess.Popen(
        [os.path.join(bin_dir, BINARIES[component]), "--config", path],
        stdout=subprocess.PIPE, stderr=open(os.path.join(work, "stderr.log"), "w"),
        env=env, text=True,
    )
    deadline = time.monotonic() + 20
    ready = None
    seen = []
    while ready is None and time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.5)[0]:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith('{"ready"'):
                ready = line.strip()
    if ready is None:
        process.kill()
        process.wait()
        log = open(os.path.join(work, "stderr.log")).read()
        sys.exit(f"{component}: no readiness line from {source}\n{''.join(seen)}{log}")
    # The services install their SIGTERM handler when serving starts, just
    # after the readiness line (services/kit lifecycle::shutdown_signal is
    # polled lazily): a SIGTERM in that gap kills with the default action.
    # Waiting a moment keeps this test about the rendered configuration.
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        sys.exit(f"{component}: still running 20s after SIGTERM")
    if code != 0:
        sys.exit(f"{component}: exit {code} after SIGTERM")
    print(ready)


if __name__ == "__main__":
    main()
