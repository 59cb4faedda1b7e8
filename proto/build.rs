//! Compiles the contracts in pure Rust (protox) so that building Baton needs
//! nothing but cargo: no system `protoc`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "baton/type/v1/annotations.proto",
    "baton/type/v1/handoff_context.proto",
    "baton/type/v1/chat.proto",
    "baton/type/v1/availability.proto",
    "baton/type/v1/callback.proto",
    "baton/handoff/v1/handoff.proto",
    "baton/connector/v1/connector.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let descriptors = protox::compile(PROTOS, [&root])?;

    // The descriptor set is also embedded for gRPC reflection.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("baton_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;

    // The service stubs need tonic; the `grpc` feature (default) brings it.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    // A malformed request is INVALID_ARGUMENT, not tonic's INTERNAL
    // (src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::BatonCodec")
        .build_client(grpc)
        .build_server(grpc)
        .compile_fds(descriptors)?;
    Ok(())
}
