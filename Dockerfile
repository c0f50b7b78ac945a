# gpt2-node's OpenAI-compatible server, installed from npm the way users install it: the
# prebuilt addon comes from the platform package (@gpt2-node/linux-x64), an optional dependency,
# so nothing compiles and the image has no compiler. CPU only: the opt-in GPU packages
# (@gpt2-node/linux-x64-cuda, -vulkan) are not installed here. See docs/deploy.md.
#
#   docker build --build-arg GPT2_NODE_VERSION=0.1.0 -t gpt2-node .
#   docker run --init -p 8080:8080 -v "$PWD/models:/models:ro" \
#     -e MODEL_PATH=/models/gpt2.gguf gpt2-node --threads 4 --parallel 8
#
# Arguments after the image name are more `gpt2-node serve` options (docs/cli.md#serve).
#
# From local tarballs instead of the registry: `node scripts/pack.mjs --out .` writes
# gpt2-node-<v>.tgz and gpt2-node-linux-x64-<v>.tgz (the platform package, built first by
# scripts/build-prebuilt.mjs); replace the first RUN below with
#   COPY gpt2-node-*.tgz /tmp/pkg/
#   RUN echo '{"private": true}' > package.json \
#    && npm install --omit=dev --no-audit --no-fund /tmp/pkg/*.tgz && rm -rf /tmp/pkg
# Both tarballs in one command: the platform tarball, of the same version, then satisfies
# gpt2-node's optional dependency and npm fetches nothing for it. Build from a folder holding
# only this file and the tarballs: the checkout itself is a large build context.
#
# Our machines have no container runtime, so this file itself is not built there. `npm run pack-check`
# checks what it relies on, in clean folders: the same two tarballs, served from a loopback
# registry, installed with `npm install gpt2-node@<v>` into an empty app with no compiler on
# PATH, then run (create-model, generate, concurrent API calls, every CPU variant).

# glibc >= 2.34 is needed by the prebuilt binaries (bookworm has 2.36). Not alpine: there is no
# musl platform package yet, so on alpine the server finds no binary.
ARG NODE_VERSION=22
FROM node:${NODE_VERSION}-bookworm-slim

ARG GPT2_NODE_VERSION=0.1.0

WORKDIR /app
# --omit=dev only: never --omit=optional / --no-optional, the binaries ARE the optional
# dependencies. Installed as root and left read-only to the `node` user that runs the server.
RUN echo '{"private": true}' > package.json \
 && npm install --omit=dev --no-audit --no-fund "gpt2-node@${GPT2_NODE_VERSION}" \
 && npm cache clean --force
# npm skips an optional dependency it cannot install without failing: load the addon here so
# the build fails (ERR_NO_BINARY: no package for this platform or libc, or optional deps
# omitted) instead of the first request. Prints the package and the variant this CPU took.
RUN node -e "import('gpt2-node').then((m) => console.log(m.nativeBinary()))"

ENV PATH=/app/node_modules/.bin:$PATH \
    MODEL_PATH=/models/model.gguf \
    PORT=8080

# Model files: mount them here, read-only (the server only reads and memory-maps them).
RUN mkdir -p /models
VOLUME ["/models"]

USER node
EXPOSE 8080

# /health needs no API key; slim images have no curl, node has fetch. The server listens only
# once the model is loaded: start-period covers the load.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# A shell only to expand MODEL_PATH and PORT (the CLI reads neither); `exec` leaves node as the
# process that gets SIGTERM. Later options win, so `-m` in the arguments overrides MODEL_PATH;
# change the port with PORT, not --port, as the health check reads PORT.
# The API key: pass GPT2_NODE_API_KEY in the environment (the CLI reads it), not as an argument.
ENTRYPOINT ["/bin/sh", "-c", "exec gpt2-node serve --host 0.0.0.0 --port \"$PORT\" -m \"$MODEL_PATH\" \"$@\"", "gpt2-node"]
CMD []
