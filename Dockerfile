# syntax=docker/dockerfile:1
# LiveKit Egress (TypeScript) node image: Debian 12, Node 24, GStreamer, Chromium, Xvfb, PulseAudio,
# and the compiled JavaScript (dist/, `npm run build`) run with no loader.
#
#   docker build -t egress .
#   docker run --rm -e EGRESS_CONFIG_BODY="$(cat config.yaml)" --stop-timeout 21600 \
#     --security-opt seccomp=deploy/seccomp/chrome-sandboxing-seccomp-profile.json egress
#
# SIGTERM (`docker stop`) drains the node: give it a stop timeout as long as a recording may still run
# (Docker's default is 10 s). SIGINT stops every job gracefully. Kubernetes: deploy/kubernetes/.

# Node 24 LTS comes from the official image: Debian 12's nodejs is 18.
FROM node:24-bookworm-slim AS node

# Production npm modules, installed with that image's npm (the final image has no npm).
FROM node AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY supervisor/package.json supervisor/
COPY handler/package.json handler/
COPY templates/package.json templates/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The compiled JavaScript (bin/build: tsc -b into dist/) and the default room-composite template
# (bin/build: vite build into templates/dist), with the dev modules (typescript, vite, React and the
# LiveKit web SDKs, bundled into the template) that only this stage has. The type declarations and
# build info in dist/types are not needed to run it.
FROM node AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY supervisor/package.json supervisor/
COPY handler/package.json handler/
COPY templates/package.json templates/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json tsconfig.build.shared.json ./
COPY bin ./bin
COPY shared/src ./shared/src
COPY supervisor/src ./supervisor/src
COPY handler/src ./handler/src
COPY templates/index.html templates/tsconfig.json templates/vite.config.ts ./templates/
COPY templates/src ./templates/src
RUN bin/build && rm -rf dist/types

FROM debian:bookworm-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian packages: deploy/packages.txt, the same list tests/rig/setup.sh installs, less the lines
# marked `# test-only` (redis-server, nginx, ...). Add a package there, not here.
COPY deploy/packages.txt deploy/docker/runtime-packages.sh /tmp/egress-packages/
RUN set -eux; \
    packages="$(sh /tmp/egress-packages/runtime-packages.sh /tmp/egress-packages/packages.txt)"; \
    test -n "$packages"; \
    apt-get update; \
    echo "$packages" | DEBIAN_FRONTEND=noninteractive xargs apt-get install -y --no-install-recommends; \
    rm -rf /var/lib/apt/lists/* /tmp/egress-packages

COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN node --version

# The user the node runs as (uid 1000, as deployment.yaml expects), in the groups PulseAudio and the
# sound devices are shared with. HOME holds Chrome's and PulseAudio's dot-files, TMPDIR the scratch
# space (tmp_dir defaults to $TMPDIR/egress), XDG_RUNTIME_DIR PulseAudio's socket.
# EGRESS_RUNTIME=dist: bin/egress runs dist/ only, never the sources through tsx.
ENV HOME=/home/egress \
    TMPDIR=/home/egress/tmp \
    XDG_RUNTIME_DIR=/home/egress/.cache/xdgr \
    NODE_ENV=production \
    EGRESS_RUNTIME=dist
RUN set -eux; \
    groupadd --gid 1000 egress; \
    useradd --uid 1000 --gid egress --groups pulse,pulse-access,audio \
      --home-dir /home/egress --create-home --shell /usr/sbin/nologin egress; \
    install -d -o egress -g egress -m 0755 /home/egress/tmp /home/egress/.cache /home/egress/.config; \
    install -d -o egress -g egress -m 0700 /home/egress/.cache/xdgr
# PulseAudio: never exit when idle, enough file descriptors for many sinks.
COPY deploy/pulseaudio/egress.conf /etc/pulse/daemon.conf.d/egress.conf

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
# served on template_port (dist/templates links to ../templates)
COPY --from=build /app/templates/dist ./templates/dist
COPY deploy/docker/entrypoint.sh ./deploy/docker/entrypoint.sh

# Recordings without cloud storage land under local_output_dir, which defaults to the working
# directory: /out, a volume, as in `docker run -v "$PWD/out:/out" … filepath /out/my-recording.mp4`.
# Paths outside it are refused.
RUN install -d -o 1000 -g 1000 -m 0755 /out
VOLUME /out
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
WORKDIR /out
STOPSIGNAL SIGTERM
# tini is PID 1: it forwards SIGTERM/SIGINT to the node (the entrypoint execs it) and reaps orphaned
# Chrome and PulseAudio processes.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/docker/entrypoint.sh"]
