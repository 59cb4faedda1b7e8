//! The crate's one error type. Every variant but [`JudgeError::Config`]
//! means the same thing to the caller: no verdict this time, keep the
//! learned model's decision.

use thiserror::Error;

/// Why [`crate::Judge::judge`] has no verdict, or why
/// [`crate::Judge::new`] refused its configuration. Messages never hold the
/// turn's text, the model's answer or the API key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JudgeError {
    /// The deadline (`timeout`) passed before a whole answer was read; the
    /// request was abandoned.
    #[error("the judge did not answer within its deadline")]
    Timeout,
    /// The call budget (`max_calls_per_minute`) is spent; nothing was sent.
    #[error("the judge's call budget is spent")]
    OverBudget,
    /// The endpoint answered with a status other than 2xx (a redirect
    /// included: it is not followed).
    #[error("the judge's endpoint answered HTTP {0}")]
    Http(u16),
    /// No answer: connection refused or reset, TLS failure, a body cut off.
    #[error("the judge's endpoint could not be reached: {0}")]
    Transport(String),
    /// An answer that is not a chat completion holding exactly the verdict
    /// object, or larger than the size limit.
    #[error("the judge's answer is malformed: {0}")]
    Malformed(String),
    /// The configuration is invalid (`"<key>: <reason>"`); from
    /// [`crate::Judge::new`] only.
    #[error("invalid judge configuration: {0}")]
    Config(String),
}

impl JudgeError {
    /// A stable UPPER_SNAKE name for explanations and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "JUDGE_TIMEOUT",
            Self::OverBudget => "JUDGE_OVER_BUDGET",
            Self::Http(_) => "JUDGE_HTTP_STATUS",
            Self::Transport(_) => "JUDGE_TRANSPORT",
            Self::Malformed(_) => "JUDGE_MALFORMED",
            Self::Config(_) => "JUDGE_CONFIG",
        }
    }
}
