# One image for every rgrid process; docker-compose.yml picks the process with `command`.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY cli ./cli
COPY bench ./bench
COPY web ./web
# npm ci builds every package and the console (web/dist), which execution-service serves.
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
# Runners execute python and node scripts; util-linux provides unshare, prlimit and setpriv.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 util-linux \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app /app
ENV NODE_ENV=production
USER node
