#!/usr/bin/env bash
# Container entrypoint, run by tini (PID 1, which forwards signals and reaps orphans). Clears what a
# previous run of this container left in the scratch directory, starts PulseAudio, then becomes the
# egress node, so that SIGTERM (drain) and SIGINT (stop the jobs) reach the node itself.
# Arguments are passed to `egress serve` (e.g. --config FILE); with none, the node reads
# EGRESS_CONFIG_FILE or EGRESS_CONFIG_BODY.
set -euo pipefail

app_dir=${EGRESS_APP_DIR:-/app}
scratch=${TMPDIR:-/home/egress/tmp}
: "${XDG_RUNTIME_DIR:=/home/egress/.cache/xdgr}"
export XDG_RUNTIME_DIR

# Scratch of a previous run (a restarted container keeps its writable layer and emptyDir volumes):
# half-written segments and Chrome profiles of jobs that cannot be resumed.
case "$scratch" in
  / | "") echo "entrypoint: refusing to clear scratch directory '$scratch'" >&2; exit 1 ;;
esac
mkdir -p "$scratch"
find "$scratch" -mindepth 1 -delete

# PulseAudio refuses to start over the pid file and socket of a daemon that is gone.
rm -rf "$XDG_RUNTIME_DIR/pulse" "${HOME:?}/.config/pulse"
mkdir -p "$XDG_RUNTIME_DIR"
chmod 0700 "$XDG_RUNTIME_DIR"
# Settings: /etc/pulse/daemon.conf.d/egress.conf (exit-idle-time = -1, rlimit-nofile).
pulseaudio -D --exit-idle-time=-1 --disallow-exit

exec "$app_dir/bin/egress" serve "$@"
