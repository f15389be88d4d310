# syntax=docker/dockerfile:1
# Build with dev dependencies, run on a slim Node 20 image with production ones only.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json rolldown.config.mjs ./
COPY src ./src
COPY bench ./bench
COPY migrations ./migrations
# tsc, then rolldown bundles the CLI into dist/bin (an entry, shared chunks, a chunk per lazily loaded command).
RUN npm run build && chmod 755 dist/bin/cli.js && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    DATA_DIR=/data \
    HEALTH_PORT=8080
WORKDIR /app
# The code stays root's (read-only to the process); only /data belongs to the node user.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/bin ./dist/bin
COPY --from=build /app/migrations ./migrations
RUN mkdir -p /data && chown node:node /data && ln -s /app/dist/bin/cli.js /usr/local/bin/tines-connector
USER node
VOLUME ["/data"]
EXPOSE 8080
# Healthy = able to work: the database answers and is migrated (/readyz). A
# database that is down shows as unhealthy; the process stays up and retries.
# (Kubernetes: liveness on /healthz, readiness on /readyz; see README, Operations.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD node -e "const p=process.env.HEALTH_PORT||'8080';if(p==='0')process.exit(0);require('http').get('http://127.0.0.1:'+p+'/readyz',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
STOPSIGNAL SIGTERM
# Exec form: node runs as PID 1 and receives SIGTERM itself (it installs its own handlers).
CMD ["node", "dist/bin/cli.js", "run"]
