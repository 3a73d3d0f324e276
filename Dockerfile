# syntax=docker/dockerfile:1
# latchkey in a container: built with the Rust toolchain image, run from a slim Debian as a
# non-root user. `docker build -t latchkey .`, or `docker compose up --build` (docker-compose.yml).
# tests/api/binary/dockerfile.rs checks this file against the project (its copy set, subcommands,
# user), and tests/api/peers/compose.rs its settings.

# --- build ---------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Only what the build reads (the protobuf compiler is pure Rust: no protoc needed), and every file
# Cargo.toml names: cargo reads the whole manifest even for one binary, so a declared bench that is
# not copied fails the build, and so does a workspace member (verify/, the verifier library) that
# is missing, though the image does not build it (tests/api/binary/dockerfile.rs lays this copy
# set out and asks cargo).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY migrations ./migrations
COPY benches ./benches
COPY verify ./verify
COPY bench ./bench
COPY src ./src
# The cargo registry and target/ are cached between builds; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin latchkey \
    && cp target/release/latchkey /usr/local/bin/latchkey

# --- run -----------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 latchkey \
    && useradd --system --uid 10001 --gid latchkey --home-dir /var/lib/latchkey --create-home \
        --shell /usr/sbin/nologin latchkey
COPY --from=builder /usr/local/bin/latchkey /usr/local/bin/latchkey

# The data directory holds the SQLite file and a generated master key when no database URL and no
# master key are given (one node: mount a volume here). A fleet sets LATCHKEY_DATABASE_URL and the
# same LATCHKEY_MASTER_KEY on every replica (docker-compose.yml).
ENV LATCHKEY_DATA_DIR=/var/lib/latchkey \
    LATCHKEY_GRPC_ADDR=0.0.0.0:50051 \
    LATCHKEY_HTTP_ADDR=0.0.0.0:8080
WORKDIR /var/lib/latchkey
USER 10001:10001
# gRPC (AuthService, health, reflection, ext_authz); HTTP (JWKS, /healthz, /readyz, /metrics).
EXPOSE 50051 8080

# Health through the binary itself (no grpc_health_probe, no curl in the image): gRPC health, or
# GET /readyz over HTTPS when LATCHKEY_TLS_CERT is set; exit 0 when SERVING, 1 otherwise, e.g.
# while the store is unreachable.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["latchkey", "healthcheck"]

ENTRYPOINT ["latchkey"]
CMD ["serve"]
