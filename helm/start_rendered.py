#!/usr/bin/env python3
"""Starts a Baton binary on a configuration file the chart rendered, with
only the pod-specific paths and addresses moved to loopback and a temporary
directory, waits for its readiness line, checks that a connector opened its
transfer journal in data_dir, sends SIGTERM and expects exit 0: the
rendered file really starts the service, not only passes its check.

The variables the pod takes from Secrets (ENV.json from manifests.py) are
set from the rendered Secrets; those of existing Secrets, which only the
cluster holds, get throwaway stand-ins of the right shape, as the TLS
Secret does. With --refused TEXT the service must instead refuse to start,
saying TEXT.

usage: start_rendered.py [--refused TEXT] BIN_DIR COMPONENT CONFIG.yaml WORK_DIR [ENV.json]
"""

import base64
import json

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
    "webhook": "baton-connector-webhook",
    "twilio": "baton-connector-twilio",
    "amazon-connect": "baton-connector-amazon-connect",
}

# Throwaway values for variables whose Secret exists only in the cluster,
# by how the variable's name ends.
STAND_INS = {
    "__SECRET": lambda: "whsec_" + base64.b64encode(os.urandom(32)).decode(),
    "__ACCOUNT_SID": lambda: "AC" + os.urandom(16).hex(),
    "__AUTH_TOKEN": lambda: os.urandom(16).hex(),
    "__CLIENT_SECRET": lambda: os.urandom(16).hex(),
    "__ACCESS_KEY_ID": lambda: "AKIA" + os.urandom(8).hex().upper(),
    "__SECRET_ACCESS_KEY": lambda: base64.b64encode(os.urandom(30)).decode(),
}

# A public key for auth.jwt.jwks_file: the EC P-256 example key of RFC 7517
# (appendix A.1).
JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "1",
                  "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                  "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}


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


def localize_auth(auth, work, bin_dir):
    """Stands in for the API keys, JWKS and HS256 Secrets mounted in the pod."""
    if "api_keys_file" in auth:
        auth["api_keys_file"] = os.path.join(work, "api-keys.toml")
        subprocess.run([os.path.join(bin_dir, "baton"), "auth", "new-key",
                        "--keys-file", auth["api_keys_file"], "--tenant", "helm-test",
                        "--role", "ai_runtime"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jwt = auth.get("jwt") or {}
    if "jwks_file" in jwt:
        jwt["jwks_file"] = os.path.join(work, "jwks.json")
        with open(jwt["jwks_file"], "w") as f:
            json.dump(JWKS, f)
    if "hs256_secret_file" in jwt:
        jwt["hs256_secret_file"] = os.path.join(work, "hs256-secret")
        with open(jwt["hs256_secret_file"], "w") as f:
            f.write(os.urandom(32).hex())


def secret_variables(path):
    """The pod's variables from Secrets: rendered values, else stand-ins."""
    variables = {}
    if path is None:
        return variables
    with open(path) as f:
        for variable in json.load(f):
            if variable["value"] is not None:
                variables[variable["name"]] = variable["value"]
                continue
            if variable["optional"]:
                continue
            stand_in = next((make for suffix, make in STAND_INS.items()
                             if variable["name"].endswith(suffix)), None)
            if stand_in is None:
                sys.exit(f"no stand-in for {variable['name']} (Secret {variable['secret']})")
            variables[variable["name"]] = stand_in()
    return variables


def localize(component, config, work, bin_dir):
    """Moves what only exists in the pod (0.0.0.0 ports, mounted volumes)
    or in the cluster (the OTLP collector)."""
    loopback = "127.0.0.1:0"
    config.get("telemetry", {}).pop("otlp_endpoint", None)
    if "tls" in config or "connector_tls" in config:
        localize_tls(config, dev_certificates(bin_dir, work))
    if config.get("metrics", {}).get("listen"):
        config["metrics"]["listen"] = loopback
    if component != "control":
        # Every connector's shared sections (the connector SDK's): its
        # listeners, and its data volume (the transfer journal, and the
        # queue's store).
        server = config.setdefault("server", {})
        for key in ("grpc_listen", "http_listen", "health_listen"):
            if key in server:
                server[key] = loopback
        config.setdefault("store", {})["data_dir"] = os.path.join(work, "data")
    if component == "control":
        if "auth" in config:
            localize_auth(config["auth"], work, bin_dir)
        config["server"]["grpc_listen"] = loopback
        config["server"]["http_listen"] = loopback
        key = os.path.join(work, "context-token.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        config["store"] = {"data_dir": os.path.join(work, "data"), "token_key_file": key}
    elif component == "sip":
        config["sip"]["bind"] = loopback
    elif component == "webhook":
        os.makedirs(os.path.join(work, "data"), exist_ok=True)
        config["delivery_log"] = os.path.join(work, "data", "deliveries.sqlite3")
    elif component == "twilio":
        config["callbacks"]["listen"] = loopback
    return config


def main():
    arguments = sys.argv[1:]
    refused = None
    if arguments[:1] == ["--refused"]:
        refused, arguments = arguments[1], arguments[2:]
    bin_dir, component, source, work = arguments[:4]
    env_file = arguments[4] if len(arguments) > 4 else None
    os.makedirs(work, exist_ok=True)
    with open(source) as f:
        config = localize(component, yaml.safe_load(f), work, bin_dir)
    path = os.path.join(work, f"{component}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env.update(secret_variables(env_file))
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
    if refused is not None:
        if ready is not None:
            process.kill()
            process.wait()
            sys.exit(f"{component}: started on {source}, but it should have refused")
        code = process.wait(timeout=20)
        log = open(os.path.join(work, "stderr.log")).read()
        if code == 0 or refused not in log:
            sys.exit(f"{component}: exit {code} without saying {refused!r}:\n{log}")
        print(log.strip().splitlines()[-1])
        return
    if ready is None:
        process.kill()
        process.wait()
        log = open(os.path.join(work, "stderr.log")).read()
        sys.exit(f"{component}: no readiness line from {source}\n{''.join(seen)}{log}")
    # Every connector keeps its transfer journal in store.data_dir (the SDK
    # opens it before the readiness line).
    journal = os.path.join(config.get("store", {}).get("data_dir") or "", "transfers.sqlite3")
    if component != "control" and not os.path.isfile(journal):
        process.kill()
        process.wait()
        sys.exit(f"{component}: ready without a transfer journal at {journal}")
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
