# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and the better-sqlite3 native addon.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: production dependencies and dist only, as a non-root user.
FROM node:20-bookworm-slim
# MAILGATE_LISTEN and MAILGATE_DATA_DIR win over any config file (also a mounted one);
# set MAILGATE_PUBLIC_URL to how browsers reach the container (the OAuth2 redirect).
ENV NODE_ENV=production \
    MAILGATE_CONFIG=/etc/mailgate/mailgate.yaml \
    MAILGATE_LISTEN=0.0.0.0:8025 \
    MAILGATE_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY scripts/healthcheck.mjs ./healthcheck.mjs
COPY config/mailgate.yaml /etc/mailgate/mailgate.yaml
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8025
# Follows MAILGATE_LISTEN (or the config's server.listen): a changed port stays healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "healthcheck.mjs"]
CMD ["node", "dist/cli.js", "serve"]
