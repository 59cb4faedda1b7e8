#!/usr/bin/env bash
# Makes the runtime base image locally from Debian bookworm packages and
# tags it gcr.io/distroless/cc-debian12:nonroot, the name the Dockerfile's
# runtime stages start FROM, so that `podman build --pull=never` needs no
# registry. Like distroless/cc: glibc, libgcc, CA certificates, users root
# and nonroot (65532), /home/nonroot, /tmp, no shell. The packages stay in
# target/image/base-debs, for the SBOM (tests/supply-chain/check.sh). Does
# nothing when both exist (BATON_BASE_REBUILD=1 makes them again).
set -euo pipefail
. "$(dirname "$0")/common.sh"
debs="$root/target/image/base-debs"

if [ "${BATON_BASE_REBUILD:-0}" != 1 ] && podman image exists "$base_image" \
  && compgen -G "$debs/*.deb" >/dev/null; then
  echo "base.sh: $base_image exists"
  exit 0
fi

work=$(mktemp -d /var/tmp/baton-base.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
root="$work/root"
rm -rf "$debs"
mkdir -p "$debs" "$root"
# apt-get download as root warns unless _apt may write the directory.
chown _apt "$debs" 2>/dev/null || true
(cd "$debs" && apt-get download -q libc6 libgcc-s1 ca-certificates >/dev/null)
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done

# dpkg-deb -x runs no maintainer scripts: the bundle update-ca-certificates
# would write is made here, as distroless ships it.
mkdir -p "$root/etc/ssl/certs"
cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
# Without nsswitch.conf glibc asks DNS before /etc/hosts and stops at
# NXDOMAIN; distroless reads files first (hostAliases live in /etc/hosts).
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
mkdir -p "$root/root" "$root/home/nonroot" "$root/tmp"
chmod 700 "$root/root"
chown 65532:65532 "$root/home/nonroot"
chmod 1777 "$root/tmp"
# Documentation is not needed at run time.
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/lintian" "$root/usr/share/locale"

tar --numeric-owner -C "$root" -c . | podman import \
  --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --quiet - "$base_image" >/dev/null
echo "base.sh: $base_image, $(podman image inspect --format '{{.Size}}' "$base_image") bytes"
