#!/usr/bin/env bash
# Runs the Helm chart's rendered manifests with `podman kube play` on the
# image build.sh made, and smoke-tests them: the control service (API keys
# required), the embedded queue and the SIP connector, SQLite on claims
# (named volumes). Every probe of the chart passes; every container runs as
# 65532 with a read-only root, no capabilities, no privilege escalation; the
# chart's `helm test` pod passes; a handoff created on the gRPC API rings a
# sipp agent through the SIP connector and connects, another waits in the
# queue for a signed-in agent;
# after the control container is stopped and restarted, the first is
# unchanged and the second waits again. Everything is torn down at the end;
# any failure exits non-zero.
#
# The pods run in a network namespace of their own (ip netns) holding only
# loopback, with podman's host network inside it: nothing is reachable from
# outside, and each Service's name is 127.0.0.1 in the containers'
# /etc/hosts (kube_manifests.py says what else podman needs changed).
# Needs root, podman (tests/apt-packages.txt), sipp (sip-tester), node/npm for
# helm, python3 with PyYAML and grpcio.
# BATON_KUBE_PLAY_KEEP=1 leaves the pods running for a look.
#
#   kube-play.sh [sqlite|postgres]
# postgres: the control service's store is a throwaway PostgreSQL (Debian's
# postgresql, initdb + pg_ctl as user postgres) on the pods' loopback, its
# URL in the Secret the chart reads (kube-play-postgres-values.yaml).
set -euo pipefail
store=${1:-sqlite}
. "$(dirname "$0")/common.sh"
work="$root/target/image/kube-play"
netns=baton-kube-play
sipp_port=5070
database_port=5432

step() { printf -- '-- %s\n' "$*"; }
die() { printf 'kube-play.sh: %s\n' "$*" >&2; exit 1; }
# Everything that starts a container runs in the namespace: with the host
# network a container joins the namespace podman runs in.
in_ns() { nsenter --net="/run/netns/$netns" "$@"; }
cli() { in_ns timeout 60 podman run --rm --pull=never --network host --env BATON_API_KEY "$image" baton "$@"; }
# wait_for SECONDS COMMAND…: runs COMMAND every second until it succeeds.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq "$seconds"); do "$@" && return 0; sleep 1; done
  return 1
}

# --- tools -------------------------------------------------------------------
command -v sipp >/dev/null || die "sipp is missing (Debian package sip-tester)"
podman image exists "$image" || die "$image is missing: run helm/image/build.sh"
helm=$(bash "$root/helm/install-helm.sh")
if ! python3 -c 'import yaml, grpc, grpc_health.v1' 2>/dev/null; then
  python3 -m pip install --quiet pyyaml grpcio grpcio-health-checking \
    || python3 -m pip install --quiet --user --break-system-packages pyyaml grpcio grpcio-health-checking
fi

# --- manifests -----------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work/keys"
values=(-f "$here/kube-play-values.yaml")
case "$store" in
  sqlite) ;;
  postgres) values+=(-f "$here/kube-play-postgres-values.yaml") ;;
  *) die "usage: kube-play.sh [sqlite|postgres]" ;;
esac
"$helm" template baton "$root/helm/baton" --namespace baton --kube-version 1.35.0 \
  "${values[@]}" >"$work/rendered.yaml"
# The Secrets the values name as existing: an API key and an agent's
# account (skill support, tenant smoke as the key), made by the image's own
# CLI (uid 65532 writes the files).
chmod 0777 "$work/keys"
offline() { timeout 60 podman run -i --rm --pull=never --network none -v "$work/keys:/keys" "$image" baton "$@"; }
BATON_API_KEY=$(offline auth new-key --keys-file /keys/api-keys.toml --tenant smoke --role ai_runtime \
  --name kube-play 2>"$work/keys/new-key.log") || die "auth new-key: $(cat "$work/keys/new-key.log")"
export BATON_API_KEY
password=$(head -c 18 /dev/urandom | base64)
echo "$password" | offline desk account add --file /keys/accounts.toml --name agent-1 --role agent \
  --tenant smoke --skill support >"$work/keys/account.log" 2>&1 || die "desk account add: $(cat "$work/keys/account.log")"
secret() {
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: baton\ntype: Opaque\ndata:\n  %s: %s\n---\n' \
    "$1" "$(basename "$2")" "$(base64 -w0 "$2")"
}
{ secret baton-api-keys "$work/keys/api-keys.toml"; secret baton-desk-accounts "$work/keys/accounts.toml"; } \
  >"$work/secrets.yaml"
if [ "$store" = postgres ]; then
  database_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf 'postgres://baton:%s@127.0.0.1:%s/baton' "$database_password" "$database_port" >"$work/keys/url"
  secret baton-database "$work/keys/url" >>"$work/secrets.yaml"
fi
convert=()
podman_version=$(podman version --format '{{.Client.Version}}')
if [ "$(printf '%s\n4.4.0\n' "$podman_version" | sort -V | head -1)" != 4.4.0 ]; then
  convert=(--secret-volumes-as-configmaps)
fi
python3 "$here/kube_manifests.py" "${convert[@]}" --tests "$work/tests.yaml" "$work/rendered.yaml" "$work/played.yaml" \
  "$work/secrets.yaml" >"$work/created"
step "rendered $(grep -c '^kind: Deployment' "$work/played.yaml") Deployments for podman $podman_version ${convert[*]}"

# --- run -----------------------------------------------------------------------
teardown() {
  if [ -n "${sipp_pid:-}" ]; then kill "$sipp_pid" 2>/dev/null || true; fi
  [ "${BATON_KUBE_PLAY_KEEP:-0}" = 1 ] && { step "left running (netns $netns)"; return; }
  timeout 60 podman kube down "$work/tests.yaml" >/dev/null 2>&1 || true
  timeout 120 podman kube down "$work/played.yaml" >/dev/null 2>&1 || true
  if [ -f "$work/pgdata/postmaster.pid" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  awk '$1 == "volume" { print $2 }' "$work/created" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  awk '$1 == "secret" { print $2 }' "$work/created" | xargs -r podman secret rm >/dev/null 2>&1 || true
  ip netns del "$netns" 2>/dev/null || true
}
trap teardown EXIT
ip netns del "$netns" 2>/dev/null || true
ip netns add "$netns"
in_ns ip link set lo up
if [ "$store" = postgres ]; then
  # Debian's newest server; its data, socket and log in the work directory.
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  mkdir -p "$work/pgdata"
  chown postgres "$work" "$work/pgdata"
  runuser -u postgres -- "$pg_bin/initdb" -D "$work/pgdata" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die "initdb failed"; }
  in_ns runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $database_port -k $work/pgdata" start >/dev/null \
    || { cat "$work/postgres.log" >&2; die "PostgreSQL did not start"; }
  runuser -u postgres -- "$pg_bin/psql" -h "$work/pgdata" -p "$database_port" -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE baton LOGIN PASSWORD '$database_password'" -c "CREATE DATABASE baton OWNER baton" \
    || die "cannot create the database"
  step "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$database_port (fsync on), database baton"
fi
in_ns timeout 180 podman kube play --network host "$work/played.yaml" >"$work/play.log" 2>&1 \
  || { cat "$work/play.log" >&2; die "podman kube play failed"; }
containers=(baton-control-pod-0-control baton-queue-pod-0-queue baton-sip-pod-0-sip)
logs() { for c in "${containers[@]}"; do echo "== $c" >&2; podman logs --tail 20 "$c" >&2 || true; done; }

in_ns python3 "$here/probes.py" "$work/played.yaml" 90 || { logs; die "the chart's probes do not pass"; }
step "every probe passes"

for c in "${containers[@]}"; do
  podman inspect "$c" --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{len .EffectiveCaps}} {{.HostConfig.SecurityOpt}}' >"$work/inspect"
  read -r user read_only caps options <"$work/inspect"
  process=$(podman top "$c" huser capeff capbnd seccomp | awk 'NR == 2 { print $1, $2, $3, $4 }')
  [ "$user" = 65532:65532 ] && [ "$read_only" = true ] && [ "$caps" = 0 ] \
    && [[ "$options" == *no-new-privileges* ]] && [ "$process" = "65532 none none filter" ] \
    || die "$c: user $user, read-only root $read_only, $caps capabilities, $options, process $process"
done
step "each container: uid/gid 65532, read-only root, no capabilities (effective, bounding), no-new-privileges, seccomp"

# --- helm test ---------------------------------------------------------------------
# The chart's test hook, played as `helm test` runs it once the release
# serves: each container asks one component's Service for its health and
# must exit 0.
in_ns timeout 60 podman kube play --network host "$work/tests.yaml" >"$work/tests-play.log" 2>&1 \
  || { cat "$work/tests-play.log" >&2; die "podman kube play of the test pod failed"; }
test_containers=$(python3 -c '
import sys, yaml
for pod in yaml.safe_load_all(open(sys.argv[1])):
    for container in pod["spec"]["containers"]:
        print(pod["metadata"]["name"] + "-" + container["name"])' "$work/tests.yaml")
[ -n "$test_containers" ] || die "the chart rendered no test pod"
exited() { [ "$(podman inspect "$1" --format '{{.State.Status}}')" = exited ]; }
for c in $test_containers; do
  wait_for 60 exited "$c" || die "test container $c still runs after 60s"
  code=$(podman inspect "$c" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || { podman logs "$c" >&2; die "helm test: $c exited $code"; }
done
step "helm test pod: $(echo $test_containers | wc -w) components answer SERVING through their Services"

# --- a handoff through the SIP connector to a sipp agent --------------------------
# The agent checks the INVITE's User-to-User token, Call-Info and X-Baton-*
# headers (intent billing, language en-US), rings and answers.
in_ns timeout 90 sipp -sf "$root/connectors/sip/tests/scenarios/agent_answers_any.xml" \
  -i 127.0.0.1 -p "$sipp_port" -t u1 -m 1 -timeout 80s -timeout_error -nostdin \
  -trace_err -error_file "$work/sipp-errors.log" -trace_msg -message_file "$work/sipp-messages.log" \
  >/dev/null 2>"$work/sipp.stderr" &
sipp_pid=$!
cli handoff create --request-id kube-play-smoke --summary "kube play smoke test" \
  --sip-uri "sip:agent@127.0.0.1:$sipp_port" --intent billing.dispute --language en-US \
  --json >"$work/created.json" || { logs; die "CreateHandoff failed"; }
id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["handoff"]["id"])' "$work/created.json")
cli handoff watch "$id" >"$work/watch.log" || { cat "$work/watch.log" >&2; logs; die "handoff $id did not connect"; }
wait "$sipp_pid" || { cat "$work/sipp-errors.log" "$work/sipp.stderr" >&2; die "the sipp agent's call failed"; }
step "handoff $id: $(grep -oE 'ringing|answered|connected|completed' "$work/watch.log" | sort -u | tr '\n' ' ')- sipp's call passed"

# --- a handoff waiting in the embedded queue -------------------------------------
# The agent signs in at the desktop and goes away, so the queue takes the
# handoff (someone with the skill is signed in) and holds it.
in_ns python3 - "$password" <<'PY' || die "the agent cannot sign in at the desktop"
import json, sys, urllib.request
def call(method, path, body, headers):
    request = urllib.request.Request(f"http://127.0.0.1:8090{path}", method=method,
        data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers})
    return urllib.request.urlopen(request, timeout=10)
with call("POST", "/api/sessions", {"name": "agent-1", "password": sys.argv[1]}, {}) as reply:
    session = {"cookie": reply.headers["set-cookie"].split(";")[0],
               "x-csrf-token": json.load(reply)["csrf_token"]}
call("PUT", "/api/agent/state", {"state": "away"}, session).close()
PY
cli handoff create --request-id kube-play-queue --summary "kube play smoke test, queued" \
  --queue support --skill support --json >"$work/queued.json" || { logs; die "CreateHandoff to the queue failed"; }
queued=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["handoff"]["id"])' "$work/queued.json")
# waits FILE: handoff $queued, read into FILE, is queued with a place in the queue.
waits() {
  cli handoff get "$queued" --json >"$1" \
    && python3 -c 'import json, sys; h = json.load(open(sys.argv[1])); sys.exit(h["state"] != "queued" or not h["queue_status"])' "$1"
}
wait_for 30 waits "$work/queued-before.json" \
  || { logs; die "handoff $queued does not wait in the queue: $(cat "$work/queued-before.json")"; }
step "handoff $queued waits in the queue"

# --- restart ---------------------------------------------------------------------
# SIGTERM, as a kubelet stops a container; the pod's restartPolicy (Always)
# starts it again. (`podman restart` fails on 4.3: a kube play pod stops its
# infra container when its only container stops, and the new one cannot join
# the stopped infra's namespaces.)
cli handoff get "$id" --json >"$work/before.json"
control=baton-control-pod-0-control
started=$(podman inspect "$control" --format '{{.State.StartedAt}}')
restarted() { [ "$(podman inspect "$control" --format '{{.State.Running}} {{.State.StartedAt}}')" != "true $started" ] \
  && [ "$(podman inspect "$control" --format '{{.State.Running}}')" = true ]; }
podman kill --signal TERM "$control" >/dev/null
wait_for 60 restarted || { logs; die "$control was not started again within 60s"; }
in_ns python3 "$here/probes.py" "$work/played.yaml" 90 >/dev/null || { logs; die "probes fail after the restart"; }
cli handoff get "$id" --json >"$work/after.json" || { logs; die "handoff $id is gone after the restart"; }
cmp -s "$work/before.json" "$work/after.json" \
  || die "handoff $id changed across the restart: $(cat "$work/before.json") -> $(cat "$work/after.json")"
step "control container restarted ($(podman inspect "$control" --format '{{.RestartCount}}') restart): handoff $id unchanged"
# The waiting handoff resumes: the control service re-attaches to the queue.
wait_for 30 waits "$work/queued-after.json" \
  || { logs; die "handoff $queued after the restart: $(cat "$work/queued-after.json")"; }
step "handoff $queued still waits in the queue"
if [ "$store" = postgres ]; then
  rows=$(runuser -u postgres -- "$pg_bin/psql" -h "$work/pgdata" -p "$database_port" -d baton -tAc \
    "SELECT count(*) FROM handoffs WHERE id IN ('$id', '$queued')")
  [ "$rows" = 2 ] || die "the handoffs are not in PostgreSQL ($rows of 2 rows)"
  step "both handoffs are rows of PostgreSQL's handoffs table"
fi
printf -- '-- kube play (%s): all checks passed\n' "$store"
