# Multi-stage: build with dev dependencies, run with production ones only.
# Node 26: the Active LTS line (LTS since 2026-10-28, maintained until 2029-04-30). Node 20
# reached end of life in 2026-04; Node 24 is in maintenance since 2026-10-20. Debian 13
# (trixie) is the base: Node 26's images are built on it by default. The range the code
# supports is package.json's `engines` (README, Container).
FROM node:26-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY web ./web
COPY scripts/build-explorer.mjs ./scripts/
RUN npx tsc -p tsconfig.json && node scripts/build-explorer.mjs

FROM node:26-trixie-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    ADMIN_PORT=9090 \
    DATA_DIR=/var/lib/spine-gateway
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/explorer ./dist/explorer
COPY config ./config
RUN mkdir -p /var/lib/spine-gateway && chown node:node /var/lib/spine-gateway
USER node
# The admin port (9090) serves audit search: without ADMIN_TOKENS_FILE it listens on
# 127.0.0.1 only (HOST=0.0.0.0 notwithstanding), so it is published to nothing until
# tokens are mounted and ADMIN_TOKENS_FILE points at them (README, Container).
EXPOSE 8080 9090
# Probes the admin port where it listens: 127.0.0.1 unless ADMIN_HOST names one address.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "const h=process.env.ADMIN_HOST;require('http').get({host:!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h,port:process.env.ADMIN_PORT||9090,path:'/healthz',timeout:2000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
