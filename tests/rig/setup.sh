#!/usr/bin/env bash
# Installs everything the egress tests need: Debian packages, npm modules and a pinned
# livekit-server. Idempotent; when everything is present it only runs a few cheap checks.
set -euo pipefail

LIVEKIT_SERVER_VERSION=v1.13.5
FAKE_GCS_SERVER_VERSION=v1.56.1

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi

# --- Debian packages -------------------------------------------------------------------
mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' deploy/packages.txt)
missing=()
for pkg in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  # Installing nginx/redis-server would otherwise start system services (nginx's default
  # site listens on 0.0.0.0:80); the rig runs its own instances on 127.0.0.1.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    trap '"${SUDO[@]}" rm -f "$policy"' EXIT
  fi
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- npm modules -----------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ node_modules/.package-lock.json -ot package-lock.json ]; then
  echo "setup: installing npm modules (npm ci)"
  # The npmrc of some images sets nodedir, which npm 10 warns about on every command.
  npm ci --no-audit --no-fund 2> >(grep -v 'Unknown user config "nodedir"' >&2)
fi

# --- Go tools, pinned and cached in .cache/bin ------------------------------------------------
# go_install NAME MODULE VERSION WHAT: builds MODULE@VERSION into .cache/bin unless that version is there.
go_install() {
  local name=$1 module=$2 version=$3 what=$4
  local bin=$ROOT/.cache/bin/$name version_file=$ROOT/.cache/bin/$name.version
  if [ -x "$bin" ] && grep -qxF "$version" "$version_file" 2>/dev/null; then return; fi
  export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
  if ! command -v go >/dev/null; then
    echo "setup: Go is required to build $what $version (Go >= 1.26); install it from https://go.dev/dl/ into /usr/local/go" >&2
    exit 1
  fi
  echo "setup: building $what $version (the first build takes a few minutes)…"
  mkdir -p "$ROOT/.cache/bin"
  GOBIN=$ROOT/.cache/bin go install "$module@$version"
  echo "$version" >"$version_file"
}

go_install server github.com/livekit/livekit-server/cmd/server "$LIVEKIT_SERVER_VERSION" livekit-server
go_install fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_SERVER_VERSION" "fake-gcs-server (GCS emulator for the upload tests)"

# --- The rig's pion publisher (tests/rig/pion), rebuilt when its sources or go.sum change ------
# The stamp holds a hash of every file that goes into the build; go.sum pins the modules.
build_pion_publisher() {
  local src=$ROOT/tests/rig/pion bin=$ROOT/.cache/bin/pion-publisher stamp=$ROOT/.cache/bin/pion-publisher.version
  local hash
  hash=$(cd "$src" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -not -name '*_test.go' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
  if [ -x "$bin" ] && grep -qxF "$hash" "$stamp" 2>/dev/null; then return; fi
  export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin
  if ! command -v go >/dev/null; then
    echo "setup: Go is required to build the pion publisher (Go >= 1.26); install it from https://go.dev/dl/ into /usr/local/go" >&2
    exit 1
  fi
  echo "setup: building the pion publisher (tests/rig/pion)…"
  mkdir -p "$ROOT/.cache/bin"
  # -mod=readonly: go.sum is checked in; a build that would change it fails instead.
  (cd "$src" && go build -mod=readonly -trimpath -o "$bin" .)
  echo "$hash" >"$stamp"
}
build_pion_publisher
