# Sourced by base.sh, build.sh and kube-play.sh: where they are, podman's
# settings, and the two image names they share.
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# Absolute: buildah's helper processes run elsewhere.
export CONTAINERS_CONF=$(realpath "${CONTAINERS_CONF:-$here/containers.conf}")
# The base the Dockerfile starts from (base.sh makes it locally).
base_image=gcr.io/distroless/cc-debian12:nonroot
# The image the chart runs by default: its repository, tagged appVersion.
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$root/helm/baton/Chart.yaml")
[ -n "$app_version" ] || { echo "no appVersion in helm/baton/Chart.yaml" >&2; exit 1; }
image="ghcr.io/baton-dev/baton:$app_version"
