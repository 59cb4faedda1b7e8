# syntax=docker/dockerfile:1
# One image, one binary: /usr/local/bin/baton, with a link per component
# (baton-control, baton-connector-queue, baton-connector-sip,
# baton-connector-webhook, baton-connector-twilio,
# baton-connector-amazon-connect, baton-connector-script). Invoked through a
# link, baton runs that component; the container command picks it (the Helm
# chart sets it per Deployment) and runs read-only as uid 65532.
#
# Two ways to fill it:
# - from source (the default target, for release pipelines), from the
#   repository root:
#     docker build -t ghcr.io/baton-dev/baton:0.1.0 .
# - from binaries built already (CI), no toolchain: helm/image/build.sh
#   stages bin/ and builds the `prebuilt` target with podman, --pull=never.

# The toolchain tests/run uses; the workspace needs at least 1.94 (its
# rust-version, set by aws-sigv4's).
ARG RUST_VERSION=1.95

# --- builder: pure Rust (protox, bundled SQLite); no protoc, no OpenSSL ----
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The dist profile: fat LTO, one codegen unit, no symbols (Cargo.toml).
# The cache mounts keep the registry and target/ between builds; the binary
# is copied out in the same step because the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked -p baton \
 && mkdir -p /out/bin \
 && cp target/dist/baton /out/bin/ \
 && for component in baton-control baton-connector-queue baton-connector-sip \
        baton-connector-webhook baton-connector-twilio \
        baton-connector-amazon-connect baton-connector-script; do \
      ln -s baton "/out/bin/$component"; \
    done

# --- base: glibc and CA certificates, no shell, non-root -------------------
# distroless/cc-debian12 matches the bookworm builder's glibc
# (helm/image/base.sh makes a local equivalent from Debian's packages).
FROM gcr.io/distroless/cc-debian12:nonroot AS base
LABEL org.opencontainers.image.source="https://github.com/baton-dev/baton" \
      org.opencontainers.image.description="Baton: warm handoffs from AI agents to humans" \
      org.opencontainers.image.licenses="Apache-2.0"
# The data directories the services default to are relative to the working
# directory; in Kubernetes the chart mounts volumes instead.
WORKDIR /home/nonroot
USER 65532:65532
# gRPC (control, queue, sip, webhook, twilio, amazon-connect), HTTP (control,
# queue desktop, webhook reports and delivery log, Twilio callbacks), SIP.
EXPOSE 50051 8080 50071 8090 50062 5062/udp 5062/tcp 50066 8096 50067 8097 50068
ENTRYPOINT []
CMD ["baton-control"]

# --- prebuilt: bin/ as helm/image/build.sh stages it (the whole context) ---
FROM base AS prebuilt
COPY bin/ /usr/local/bin/

# --- runtime (the default target): built from source above -----------------
FROM base AS runtime
COPY --from=builder /out/bin/ /usr/local/bin/
