//! Baton's protobuf contracts, compiled for tonic.
//!
//! - [`handoff::v1`]: `HandoffService`, called by AI agent runtimes.
//! - [`connector::v1`]: `ConnectorService`, implemented by every connector.
//! - [`types::v1`]: the types both share (`baton.type.v1`).
//!
//! The tonic client and server stubs come with the `grpc` feature (on by
//! default); without it, only the messages are compiled.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

/// `baton.type.v1`. Generated code names the package `r#type`; use [`types`].
pub mod r#type {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/baton.r#type.v1.rs"));
    }
}

pub use r#type as types;

pub mod handoff {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/baton.handoff.v1.rs"));
    }
}

pub mod connector {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/baton.connector.v1.rs"));
    }
}

#[cfg(feature = "grpc")]
pub mod bearer;
#[cfg(feature = "grpc")]
pub mod codec;

/// The encoded `FileDescriptorSet` of every Baton contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/baton_descriptor.bin"));
