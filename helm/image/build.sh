#!/usr/bin/env bash
# Builds ghcr.io/baton-dev/baton:<appVersion> with podman from release
# binaries already built (target/release, or BATON_RELEASE_DIR), through the
# Dockerfile's `prebuilt` stage: no toolchain, no registry (--pull=never; the
# base comes from base.sh). The image holds /usr/local/bin/baton and one
# symlink per component: baton runs the component it is invoked as. The
# binary is copied and stripped of any debug information (the release
# profile has none; symbols stay, for backtraces).
set -euo pipefail
. "$(dirname "$0")/common.sh"
release=${BATON_RELEASE_DIR:-$root/target/release}
context="$root/target/image/context"
components=(baton-control baton-connector-queue baton-connector-sip baton-connector-webhook
  baton-connector-twilio baton-connector-amazon-connect baton-connector-script)
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

podman image exists "$base_image" || die "no base image: run helm/image/base.sh"

# The context is bin/ alone: the repository's .dockerignore does not apply
# to it, and nothing else of target/ is sent.
rm -rf "$context"
mkdir -p "$context/bin"
[ -x "$release/baton" ] || die "$release/baton is missing: build the release binaries first"
cp "$release/baton" "$context/bin/baton"
strip --strip-debug "$context/bin/baton"
for component in "${components[@]}"; do
  ln -s baton "$context/bin/$component"
done

podman build --quiet --pull=never --target prebuilt -f "$root/Dockerfile" -t "$image" "$context" >/dev/null
# The binaries must load with the base's glibc.
runs=$(podman run --rm --pull=never "$image" baton --version) || die "$image: baton does not run in it"
echo "build.sh: $image ($runs), $(podman image inspect --format '{{.Size}}' "$image") bytes; /usr/local/bin:"
# Size, name and, for a symlink, its target.
find "$context/bin" -mindepth 1 -printf '  %s\t%f\t%l\n' | sort -k2
