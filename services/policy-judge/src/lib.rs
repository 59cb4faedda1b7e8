//! The optional LLM judge for ambiguous escalation turns (issue 26).
//!
//! A tenant that wants it gives the URL of an OpenAI-compatible
//! chat-completions endpoint; the policy consults the judge only when the
//! learned classifier's probability falls between two thresholds. The
//! judge never holds a turn up: one call, a hard deadline, a per-minute
//! budget, and an answer read strictly. Any [`JudgeError`] from
//! [`Judge::judge`] means "keep the model's decision"; the caller decides.
//!
//! The caller passes text it has already redacted; the judge sends it to
//! the endpoint as data (see `README.md`) and never logs it.

mod budget;
mod config;
mod error;
mod judge;
mod prompt;
mod verdict;

pub use config::{
    ApiKey, DEFAULT_MAX_CALLS_PER_MINUTE, DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT, JudgeConfig,
    MAX_CALLS_PER_MINUTE, MAX_MAX_TOKENS, MAX_TIMEOUT, MIN_TIMEOUT,
};
pub use error::JudgeError;
pub use judge::{Judge, MAX_RESPONSE_BYTES};
pub use prompt::{
    JudgeRequest, Labels, MAX_EARLIER_TURN_CHARS, MAX_EARLIER_TURNS, MAX_TURN_CHARS, SYSTEM_PROMPT,
    Speaker, Turn,
};
pub use verdict::{MAX_REASON_CHARS, Verdict};

/// The contract-checking endpoint of this crate's tests, for other crates'
/// tests.
#[cfg(feature = "fake-endpoint")]
#[path = "../tests/support/mod.rs"]
pub mod fake_endpoint;
