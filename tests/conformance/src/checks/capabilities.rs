//! Capabilities, both directions: every advertised target kind and mode
//! works with the profile's samples, and every one not advertised is
//! refused with UNIMPLEMENTED or INVALID_ARGUMENT before anything happens.

use baton_proto::connector::v1::StartTransferRequest;
use baton_proto::types::v1::{TargetKind, TransferMode};
use tonic::Code;

use super::Session;
use crate::profile::{Expectation, SampleTarget};
use crate::report::Outcome;
use crate::requests::{self, TARGET_KINDS, TRANSFER_MODES};

pub fn kind_label(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Queue => "queue",
        TargetKind::PhoneNumber => "phone_number",
        TargetKind::SipUri => "sip_uri",
        TargetKind::Unspecified => "unspecified",
    }
}

pub fn mode_label(mode: TransferMode) -> &'static str {
    match mode {
        TransferMode::Warm => "warm",
        TransferMode::Blind => "blind",
        TransferMode::Attended => "attended",
        TransferMode::Unspecified => "unspecified",
    }
}

pub async fn run(session: &mut Session) {
    for kind in TARGET_KINDS {
        let label = kind_label(kind);
        if session.advertises_kind(kind) {
            session
                .check(
                    &format!("capabilities.kind.{label}.works"),
                    async |s: &mut Session| kind_works(s, kind).await,
                )
                .await;
        } else {
            session
                .check(
                    &format!("capabilities.kind.{label}.refused"),
                    async |s: &mut Session| kind_refused(s, kind).await,
                )
                .await;
        }
    }
    for mode in TRANSFER_MODES {
        let label = mode_label(mode);
        if session.advertises_mode(mode) {
            session
                .check(
                    &format!("capabilities.mode.{label}.works"),
                    async |s: &mut Session| mode_works(s, mode).await,
                )
                .await;
        } else {
            session
                .check(
                    &format!("capabilities.mode.{label}.refused"),
                    async |s: &mut Session| mode_refused(s, mode).await,
                )
                .await;
        }
    }
}

async fn kind_works(session: &mut Session, kind: TargetKind) -> Outcome {
    let samples: Vec<SampleTarget> = session
        .profile
        .targets
        .iter()
        .filter(|s| s.kind() == Some(kind))
        .cloned()
        .collect();
    if samples.is_empty() {
        return Outcome::Skip(format!(
            "no sample target of kind {} in the profile",
            kind_label(kind)
        ));
    }
    let mut seen = Vec::new();
    for sample in samples {
        let Some(mode) = session.mode_for(&sample) else {
            return Outcome::Skip(format!(
                "{}: none of its modes is advertised",
                sample.label()
            ));
        };
        let label = format!("{} ({})", sample.label(), mode_label(mode));
        let (_, _, verdict) = session.run_sample(&sample, mode, label.clone()).await;
        match verdict {
            Ok(summary) => seen.push(format!("{label}: {summary}")),
            Err(problem) => return Outcome::Fail(format!("{label}: {problem}")),
        }
    }
    Outcome::Pass(seen.join("; "))
}

async fn mode_works(session: &mut Session, mode: TransferMode) -> Outcome {
    let sample = [Expectation::Connects, Expectation::Holds]
        .into_iter()
        .flat_map(|expect| session.samples(expect))
        .find(|s| s.allows(mode));
    let Some(sample) = sample else {
        return Outcome::Skip(format!(
            "no sample target that connects or holds with mode {}",
            mode_label(mode)
        ));
    };
    let label = format!("{} ({})", sample.label(), mode_label(mode));
    match session.run_sample(&sample, mode, label.clone()).await.2 {
        Ok(summary) => Outcome::Pass(format!("{label}: {summary}")),
        Err(problem) => Outcome::Fail(format!("{label}: {problem}")),
    }
}

async fn kind_refused(session: &mut Session, kind: TargetKind) -> Outcome {
    let Some(mode) = session.advertised_modes().first().copied() else {
        return Outcome::Skip("no transfer mode is advertised".into());
    };
    let given = session
        .profile
        .targets
        .iter()
        .find(|s| s.kind() == Some(kind))
        .cloned();
    let sample = match given {
        Some(sample) => sample,
        None => match requests::synthesized_target(kind) {
            Some(target) => SampleTarget::new(target, Expectation::Fails),
            None => return Outcome::Skip("no sample of this kind".into()),
        },
    };
    let request = session.request(&sample, mode, session.long_deadline());
    expect_refusal(
        session,
        request,
        format!("unadvertised kind: {}", sample.label()),
        &[Code::Unimplemented, Code::InvalidArgument],
        None,
    )
    .await
}

async fn mode_refused(session: &mut Session, mode: TransferMode) -> Outcome {
    let Some(sample) = any_advertised_sample(session) else {
        return Outcome::Skip("no target kind is advertised".into());
    };
    let request = session.request(&sample, mode, session.long_deadline());
    expect_refusal(
        session,
        request,
        format!("unadvertised mode {}: {}", mode_label(mode), sample.label()),
        &[Code::Unimplemented, Code::InvalidArgument],
        None,
    )
    .await
}

/// A made-up sample of the first advertised kind, reaching no one: for
/// requests that must be refused before anything is dialled.
pub fn any_advertised_sample(session: &Session) -> Option<SampleTarget> {
    TARGET_KINDS
        .into_iter()
        .find(|k| session.advertises_kind(*k))
        .and_then(requests::synthesized_target)
        .map(|target| SampleTarget::new(target, Expectation::Fails))
}

/// Sends `request` and expects it refused with one of `codes` before any
/// event; with `field`, an INVALID_ARGUMENT must name it (in `BadRequest`
/// details or the message). An accepted transfer is cancelled at once.
pub async fn expect_refusal(
    session: &mut Session,
    request: StartTransferRequest,
    label: String,
    codes: &[Code],
    field: Option<&str>,
) -> Outcome {
    let follower = session.start_settled(request.clone(), label).await;
    let refusal = follower
        .refusal()
        .map(|(code, message)| (code, message.to_owned()));
    let violations = follower.violations.clone();
    let observed = session.clean_up(&request, follower).await;
    match refusal {
        Some((code, message)) if codes.contains(&code) => {
            if let Some(field) = field
                && code == Code::InvalidArgument
                && !violations.iter().any(|v| v.starts_with(field))
                && !message.contains(field)
            {
                return Outcome::Fail(format!(
                    "INVALID_ARGUMENT does not name the field {field:?} (message {message:?}, field violations {violations:?})"
                ));
            }
            Outcome::Pass(format!("{code:?}: {message}"))
        }
        Some((code, message)) => Outcome::Fail(format!(
            "refused with {code:?} ({message}) instead of {}",
            codes
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
        None => Outcome::Fail(format!(
            "accepted instead of refused: {}",
            observed.summary()
        )),
    }
}
