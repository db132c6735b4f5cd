# wa-gateway: supervisord runs the aiohttp gateway and the Node (Baileys) worker in one container.
# Node 20 is required by Baileys 7 (Debian bookworm's own nodejs is 18), so the base is Node's
# bookworm image with Debian's Python 3.11 added.
FROM node:20-bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Worker dependencies first, so code changes do not reinstall them. `npm ci` applies the reviewed Baileys
# patch (node_worker/patches/, by patch-package, a dev dependency); the prune then drops dev packages.
COPY node_worker/package.json node_worker/package-lock.json node_worker/
COPY node_worker/patches/ node_worker/patches/
RUN cd node_worker && npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

COPY setup.cfg pyproject.toml README.md ./
COPY service/ service/
COPY clients/python/ clients/python/
# The gateway and its client: `docker exec <container> wa-gateway selftest` checks the deployment.
RUN python3 -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir -e . -e clients/python

COPY conf/ conf/
COPY node_worker/lib/ node_worker/lib/
COPY node_worker/src/ node_worker/src/
COPY node_worker/emulator/ node_worker/emulator/

RUN useradd --create-home --uid 10001 wa \
 && mkdir -p /app/whatsapp_data /app/run \
 && chown -R wa:wa /app/whatsapp_data /app/run \
 && chmod 0700 /app/run
USER wa

ENV WA_HOST=0.0.0.0 \
    WA_PORT=3001 \
    WA_DATA_DIR=/app/whatsapp_data \
    WA_RUN_DIR=/app/run \
    WA_LOG_FORMAT=json \
    PATH=/app/.venv/bin:$PATH

VOLUME /app/whatsapp_data
EXPOSE 3001

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WA_PORT || 3001) + '/health/live').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The launcher is PID 1: it checks the settings (a bad one exits 78 at once), runs supervisord as its
# only child, forwards the container's SIGTERM/SIGINT to it (supervisord stops every program within its
# stopwaitsecs), reaps orphans, and exits 78 when a program stopped the stack on a configuration error.
ENTRYPOINT ["/app/.venv/bin/wa-gateway"]
CMD ["run"]
