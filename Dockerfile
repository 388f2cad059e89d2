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
ENV NODE_ENV=production \
    MAILGATE_CONFIG=/etc/mailgate/mailgate.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config/mailgate.yaml /etc/mailgate/mailgate.yaml
RUN mkdir -p /data && chown node:node /data
# The default config keeps state in ../data relative to /etc/mailgate; point it at the volume.
RUN sed -i 's|^dataDir:.*|dataDir: /data|; s|listen: 127.0.0.1:8025|listen: 0.0.0.0:8025|' /etc/mailgate/mailgate.yaml
USER node
VOLUME /data
EXPOSE 8025
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8025/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli.js", "serve"]
