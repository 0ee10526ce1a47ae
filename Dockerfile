# syntax=docker/dockerfile:1

# Armoire API. `npm run build` compiles the TypeScript to dist/ in a build stage; the image
# runs that JavaScript with plain node, beside the production node_modules (no tsx, no sources).

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
# argon2 ships prebuilt binaries and compiles itself when none loads (seen with Debian's own
# Node build): the toolchain stays in this stage and never reaches the runtime image.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# npm 11 honours package.json's `allowScripts`: only the reviewed packages (argon2, esbuild,
# the embedded PostgreSQL binaries) run install scripts, as in development and CI.
RUN npm install --global npm@11.19.1 && npm cache clean --force
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM deps AS build
# The compiler and the other development dependencies live in this stage only.
RUN npm ci --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json tsconfig.build.json ./
COPY db ./db
COPY openapi ./openapi
COPY plugins ./plugins
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE}
# Chromium renders the invoices (puppeteer-core drives the system browser); its fonts are
# only recommended, hence named. tini reaps the browser's children, which PID 1 must do.
RUN apt-get update \
  && apt-get install -y --no-install-recommends chromium fonts-liberation fonts-dejavu-core ca-certificates tini \
  && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    STORAGE_DIR=/var/lib/armoire \
    CHROMIUM_PATH=/usr/bin/chromium

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY --from=build /app/dist ./dist

# The image's `node` user (uid 1000) owns nothing but the storage directory.
RUN mkdir -p /var/lib/armoire && chown node:node /var/lib/armoire
USER node

EXPOSE 3000
# Ready means database, storage and migrations are fine, not merely that the process answers.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health/ready`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM lets close-with-grace finish the requests in flight (SHUTDOWN_TIMEOUT_MS).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
# Migrations run at start (MIGRATE_ON_START); `node dist/scripts/keys-rotate.js` rotates the master key.
CMD ["node", "--enable-source-maps", "dist/src/server.js"]
