# syntax=docker/dockerfile:1
# gatecore container image.
#   docker build -t gatecore .
#   docker run -p 8080:8080 -v "$PWD/config.yaml:/etc/gatecore/config.yaml:ro" gatecore
#   docker run -p 8080:8080 -e GATECORE_CONFIG= -e GATECORE_MASTER_KEY=... -e OPENAI_API_KEY=... gatecore
#       (no config file: the master key is required, the server refuses to start without one)
# Stage 1 builds the wheel (Rust extension included); stage 2 installs only that wheel, no build tools.
# Pin the base image by digest for a reproducible build (SECURITY.md, "Supply chain"):
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> -t gatecore .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The Rust toolchain rust-toolchain.toml pins (not whatever `stable` is on the day of the build).
ARG RUST_TOOLCHAIN=1.95.0
# gcc + libc6-dev: rustc's linker; curl + ca-certificates: rustup
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && curl --proto '=https' --tlsv1.2 -sSf -o /tmp/rustup-init.sh https://sh.rustup.rs \
 && sh /tmp/rustup-init.sh -y --no-modify-path --profile minimal --default-toolchain "$RUST_TOOLCHAIN" \
 && rm /tmp/rustup-init.sh \
 && pip install "maturin>=1.7,<2"
WORKDIR /src
COPY . .
# cache mounts keep the crates.io index/downloads and cargo's build folder between builds
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    maturin build --release --locked --out /dist

# ---- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATECORE_CONFIG=/etc/gatecore/config.yaml
# the dependencies come from the hash-checked lock (a changed or substituted file fails the build);
# the wheel is bind-mounted from the builder, so it never becomes a layer of this image
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,from=builder,source=/dist,target=/dist \
    pip install --require-hashes -r /tmp/requirements.lock \
 && pip install --no-deps /dist/*.whl \
 && useradd --system --user-group --uid 10001 --home-dir /var/lib/gatecore --create-home \
    --shell /usr/sbin/nologin gatecore \
 && mkdir -p /etc/gatecore
# state that defaults to files (embedded SQLite) lives in the working directory, owned by gatecore
WORKDIR /var/lib/gatecore
USER gatecore
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["gatecore"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
