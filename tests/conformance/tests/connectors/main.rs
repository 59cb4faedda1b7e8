//! The conformance kit against every connector in the repository, each a
//! real process launched by the kit (so that the shutdown check runs too),
//! with real far ends where the connector needs one (sipp for SIP, an agent
//! on the queue's desktop API); and against a deliberately broken connector,
//! which must fail the right checks.
//!
//! Binaries come from `baton_tests::binary` (build them first:
//! `cargo build -p baton-connector-script -p baton-connector-queue -p baton-connector-sip`).

mod broken;
mod command;
mod common;
mod python;
mod queue;
mod script;
mod sip;
mod tenants;
