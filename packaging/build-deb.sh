#!/usr/bin/env bash
# Builds the ncs-gateway Debian package: a static binary, then the .deb
# around it with nfpm (run through the Go module proxy, so go.mod is not
# touched). Prints the path of the .deb on its last line.
#
#   packaging/build-deb.sh                  # -> dist/ncs-gateway_<version>_<arch>.deb
#   VERSION=1.2.3 packaging/build-deb.sh    # a release
#   GOARCH=arm64 packaging/build-deb.sh     # another architecture
#   DIST_DIR=/tmp/out packaging/build-deb.sh
#
# VERSION (a tag such as v1.2.3 or 1.2.3-rc.1) defaults to `git describe
# --tags --always`, then 0.0.0~dev; it is turned into a Debian version
# (1.2.3, 1.2.3~rc.1), which both names the package and is what
# `ncs-gateway -version` prints. MAINTAINER sets the package's Maintainer.
set -euo pipefail

# nfpm's version is pinned: newer ones fail to build here (MODULES.md).
nfpm_module=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" # nfpm.yaml's relative paths are relative to the repository root
dist=${DIST_DIR:-$repo/dist}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)

# debian_version turns a git tag, a git describe or VERSION (an upstream,
# semver-style version) into a Debian version that sorts like the releases:
#   v1.2.3 -> 1.2.3            v1.2.3-rc.1 -> 1.2.3~rc.1 (before 1.2.3)
#   v1.2.3-4-gabc1234 (4 commits past the tag) -> 1.2.3+4.gabc1234
#   abc1234 (no tag yet) -> 0.0.0~git.abc1234
debian_version() {
  local v=${1#v} suffix=""
  if [[ $v =~ ^(.+)-([0-9]+)-(g[0-9a-f]+)$ ]]; then
    v=${BASH_REMATCH[1]}
    suffix="+${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
  elif [[ $v =~ ^[0-9a-f]{7,40}$ && ! $v =~ ^[0-9]+$ ]]; then
    v="0.0.0~git.$v"
  fi
  # A hyphen would start a Debian revision, sorting a pre-release after its release.
  if [[ $v =~ ^([0-9]+(\.[0-9]+)*)-([0-9A-Za-z.]+)$ ]]; then
    v="${BASH_REMATCH[1]}~${BASH_REMATCH[3]}"
  fi
  v+=$suffix
  # Debian policy: starts with a digit; letters, digits and . + ~ only here.
  if [[ ! $v =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
    echo "build-deb.sh: version '$1' cannot be a Debian version (want e.g. 1.2.3)" >&2
    return 1
  fi
  printf '%s\n' "$v"
}

if [ -z "${VERSION:-}" ]; then
  VERSION=$(git describe --tags --always 2>/dev/null || true)
  VERSION=${VERSION:-0.0.0~dev}
fi
deb_version=$(debian_version "$VERSION")
goarch=$(go env GOARCH)

# The binary: static (no libc dependency), reproducible paths, no debug info.
bin="$dist/ncs-gateway-linux-$goarch"
CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" go build -trimpath \
  -ldflags "-s -w -X main.version=$deb_version" -o "$bin" ./cmd/ncs-gateway

# The nfpm config, plus an entry for the optional alert rules when they exist
# (nfpm fails on a missing source, and has no optional entries).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp packaging/nfpm.yaml "$work/nfpm.yaml"
if [ -f configs/alerts.yml ]; then
  cat >>"$work/nfpm.yaml" <<'YAML'

  - src: configs/alerts.yml
    dst: /usr/share/ncs-gateway/alerts.yml
    file_info:
      mode: 0644
YAML
fi

# Remove an older build of the same version so the glob below finds one file.
rm -f "$dist/ncs-gateway_${deb_version}_"*.deb

# nfpm runs here, so it is built for this machine whatever GOARCH says.
NCS_GATEWAY_DEB_VERSION=$deb_version \
  NCS_GATEWAY_DEB_ARCH=$goarch \
  NCS_GATEWAY_BIN=$bin \
  NCS_GATEWAY_DEB_MAINTAINER=${MAINTAINER:-ncs-gateway maintainers <maintainers@ncs-gateway.invalid>} \
  GOOS=$(go env GOHOSTOS) GOARCH=$(go env GOHOSTARCH) \
  go run "$nfpm_module" package --config "$work/nfpm.yaml" --packager deb --target "$dist/" >&2

debs=("$dist/ncs-gateway_${deb_version}_"*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  echo "build-deb.sh: want one ncs-gateway_${deb_version}_*.deb in $dist, got: ${debs[*]}" >&2
  exit 1
fi
printf '%s\n' "${debs[0]}"
