#!/usr/bin/env bash
# Runs a command in a private network namespace, so that nothing it starts can reach any
# other machine. Useful because WebRTC clients (rtc-node, Chromium) gather ICE candidates on
# every non-loopback interface and offer no setting to restrict that. libwebrtc will not
# connect without a non-loopback interface, so the namespace gets a veth pair whose both ends
# stay inside it. Requires root (or CAP_SYS_ADMIN).
# Usage: tests/rig/isolate.sh npx tap tests/unit/rig.test.ts
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo --preserve-env)
fi
exec "${SUDO[@]}" unshare --net -- bash -c '
  set -e
  ip link set lo up
  ip link add rig0 type veth peer name rig1
  ip addr add 10.77.0.1/30 dev rig0
  ip link set rig0 up
  ip link set rig1 up
  exec "$@"' isolate "$@"
