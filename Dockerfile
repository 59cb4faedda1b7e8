# syntax=docker/dockerfile:1
# One image with every Baton binary; the container command picks the
# component (baton-control, baton-connector-queue, baton-connector-sip,
# baton-connector-webhook, baton-connector-twilio,
# baton-connector-amazon-connect, baton-connector-script, or the baton
# CLI). Build from the repository root:
#   docker build -t ghcr.io/baton-dev/baton:0.1.0 .
# The Helm chart (helm/baton) runs this image read-only as uid 65532.

# The toolchain tests/run uses; the workspace needs at least 1.94 (its
# rust-version, set by aws-sigv4's).
ARG RUST_VERSION=1.95

# --- builder: pure Rust (protox, bundled SQLite); no protoc, no OpenSSL ----
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target/ between builds; the
# binaries are copied out in the same step because the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p baton -p baton-control -p baton-connector-queue \
        -p baton-connector-sip -p baton-connector-webhook \
        -p baton-connector-twilio -p baton-connector-amazon-connect \
        -p baton-connector-script \
 && mkdir -p /out \
 && cp target/release/baton target/release/baton-control \
       target/release/baton-connector-queue target/release/baton-connector-sip \
       target/release/baton-connector-webhook target/release/baton-connector-twilio \
       target/release/baton-connector-amazon-connect \
       target/release/baton-connector-script /out/

# --- runtime: glibc and CA certificates, no shell, non-root ----------------
# distroless/cc-debian12 matches the bookworm builder's glibc.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/baton-dev/baton" \
      org.opencontainers.image.description="Baton: warm handoffs from AI agents to humans" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
# The data directories the services default to are relative to the working
# directory; in Kubernetes the chart mounts volumes instead.
WORKDIR /home/nonroot
USER 65532:65532
# gRPC (control, queue, sip, webhook, twilio, amazon-connect), HTTP (control,
# queue desktop, webhook reports and delivery log, Twilio callbacks), SIP.
EXPOSE 50051 8080 50071 8090 50062 5062/udp 5062/tcp 50066 8096 50067 8097 50068
ENTRYPOINT []
CMD ["baton-control"]
