//! A transfer's life: StartTransfer is idempotent by (handoff id, attempt)
//! (a repeat replays the same run and follows it), a cancel at every stage
//! ends it with one CANCELLED, deadlines end it with
//! FAILED(DEADLINE_EXCEEDED) instead of a hang.

use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::TransferEventKind;
use baton_proto::types::v1::FailureReason;
use tonic::Code;

use super::{Session, is_cancelled, terminal_name};
use crate::events::{self, Observed, StreamEnd, check_replay, kind_name};
use crate::profile::Expectation;
use crate::report::Outcome;

pub async fn run(session: &mut Session) {
    session
        .check("idempotency.replay_while_running", replay_while_running)
        .await;
    session
        .check("idempotency.replay_after_end", replay_after_end)
        .await;
    session
        .check("idempotency.new_attempt_new_run", new_attempt)
        .await;
    session
        .check("cancel.unknown_transfer", cancel_unknown)
        .await;
    session.check("cancel.after_end", cancel_after_end).await;
    session
        .check("cancel.at_stage.start", async |s: &mut Session| {
            cancel_at(s, None, 1).await
        })
        .await;
    match stages(session).await {
        Ok(stages) => {
            for stage in stages {
                let id = format!("cancel.at_stage.{}", kind_name(stage).to_ascii_lowercase());
                session
                    .check(&id, async |s: &mut Session| {
                        cancel_at(s, Some(stage), 1).await
                    })
                    .await;
            }
        }
        Err(reason) => {
            session
                .check("cancel.at_stage.each", async |_| Outcome::Skip(reason))
                .await
        }
    }
    session
        .check("cancel.any_attempt", async |s: &mut Session| {
            cancel_at(s, None, 0).await
        })
        .await;
    session.check("deadline.expires", deadline_expires).await;
    session
        .check("deadline.already_passed", deadline_passed)
        .await;
}

/// The distinct event kinds a holding transfer shows before it holds.
async fn stages(session: &mut Session) -> Result<Vec<i32>, String> {
    if let Some(stages) = &session.hold_stages {
        return Ok(stages.clone());
    }
    let (sample, mode) = session.holding()?;
    let (_, observed, verdict) = session
        .run_sample(&sample, mode, format!("stages of {}", sample.label()))
        .await;
    verdict?;
    let stages = distinct_kinds(&observed);
    session.hold_stages = Some(stages.clone());
    Ok(stages)
}

fn distinct_kinds(observed: &Observed) -> Vec<i32> {
    let mut kinds = Vec::new();
    for event in &observed.events {
        if !kinds.contains(&event.kind) && !events::is_terminal(event.kind) {
            kinds.push(event.kind);
        }
    }
    kinds
}

async fn replay_while_running(session: &mut Session) -> Outcome {
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(reason) => return Outcome::Skip(reason),
    };
    let settle = session.profile.settle;
    let request = session.request(&sample, mode, session.long_deadline());
    let mut first = session
        .client
        .start_observed(
            request.clone(),
            format!("first StartTransfer: {}", sample.label()),
        )
        .await;
    session.await_hold(&sample, &mut first).await;
    if let Err(problem) = super::judge(&sample, &first.observed) {
        session.clean_up(&request, first).await;
        return Outcome::Fail(format!("the holding sample did not hold: {problem}"));
    }
    session.hold_stages = Some(distinct_kinds(&first.observed));
    // The repeat must replay at least what the first stream had seen.
    let seen_before = first.observed.events.len();
    let mut again = session
        .client
        .start_observed(
            request.clone(),
            format!("repeated StartTransfer: {}", sample.label()),
        )
        .await;
    session.await_hold(&sample, &mut again).await;
    first.settle(settle, settle).await;
    let before_cancel = check_replay(&first.observed, &again.observed);
    let shorter = again.observed.events.len() < seen_before;
    let cancelled = session
        .client
        .cancel(&request.handoff_id, request.attempt)
        .await;
    first.finish(session.profile.grace).await;
    again.finish(session.profile.grace).await;
    let (first, again) = (first.into_observed(), again.into_observed());
    session.keep(first.clone());
    session.keep(again.clone());
    if let Err(problem) = before_cancel {
        return Outcome::Fail(problem);
    }
    if shorter {
        return Outcome::Fail(format!(
            "the repeat did not replay from the first event: first stream {}; repeat {}",
            first.summary(),
            again.summary()
        ));
    }
    if let Err(problem) = check_replay(&first, &again) {
        return Outcome::Fail(format!("after the cancel: {problem}"));
    }
    match cancelled {
        Ok(true) => {}
        Ok(false) => {
            return Outcome::Fail(
                "CancelTransfer of the running transfer answered cancelled = false".into(),
            );
        }
        Err(status) => return Outcome::Fail(format!("CancelTransfer failed: {status:?}")),
    }
    if !is_cancelled(&first) || !is_cancelled(&again) {
        return Outcome::Fail(format!(
            "both streams must end with the one CANCELLED: first {}; repeat {}",
            first.summary(),
            again.summary()
        ));
    }
    Outcome::Pass(format!(
        "both streams saw {} (run {:?})",
        first.summary(),
        first
            .events
            .first()
            .map(|e| e.run_id.as_str())
            .unwrap_or_default()
    ))
}

/// An ended transfer, running a sample that ends if none ended yet.
pub(super) async fn an_ended_transfer(
    session: &mut Session,
) -> Result<(baton_proto::connector::v1::StartTransferRequest, Observed), String> {
    if let Some(ended) = &session.ended {
        return Ok(ended.clone());
    }
    let sample = [Expectation::Connects, Expectation::Fails]
        .into_iter()
        .flat_map(|expect| session.samples(expect))
        .find_map(|s| session.mode_for(&s).map(|m| (s, m)));
    let Some((sample, mode)) = sample else {
        return Err("no sample target that connects or fails".into());
    };
    let (request, observed, verdict) = session.run_sample(&sample, mode, sample.label()).await;
    verdict.map_err(|problem| format!("{}: {problem}", sample.label()))?;
    Ok((request, observed))
}

async fn replay_after_end(session: &mut Session) -> Outcome {
    let (request, original) = match an_ended_transfer(session).await {
        Ok(ended) => ended,
        Err(reason) => return Outcome::Skip(reason),
    };
    let mut replay = session
        .client
        .start_observed(
            request.clone(),
            format!("replay of ended {}", original.label),
        )
        .await;
    replay.finish(session.profile.transfer_timeout).await;
    let replay = session.clean_up(&request, replay).await;
    if let Err(problem) = check_replay(&original, &replay) {
        return Outcome::Fail(problem);
    }
    if replay.events.len() != original.events.len() {
        return Outcome::Fail(format!(
            "the replay differs in length: original {}; replay {}",
            original.summary(),
            replay.summary()
        ));
    }
    Outcome::Pass(format!("replayed {}", replay.summary()))
}

/// Attempt 2 of a handoff whose attempt 1 ended (a fallback) is a transfer
/// of its own: a new run from sequence 1, not attempt 1's replay.
async fn new_attempt(session: &mut Session) -> Outcome {
    let (mut request, original) = match an_ended_transfer(session).await {
        Ok(ended) => ended,
        Err(reason) => return Outcome::Skip(reason),
    };
    request.attempt += 1;
    let mut next = session
        .client
        .start_observed(
            request.clone(),
            format!("attempt {} after {}", request.attempt, original.label),
        )
        .await;
    next.settle(session.profile.settle, session.profile.transfer_timeout)
        .await;
    let next = session.clean_up(&request, next).await;
    if let StreamEnd::Status(code, message) = &next.end
        && next.events.is_empty()
    {
        return Outcome::Fail(format!(
            "attempt {} was refused: {code:?} {message}",
            request.attempt
        ));
    }
    let (Some(first), Some(again)) = (original.events.first(), next.events.first()) else {
        return Outcome::Fail(format!("attempt {} sent no event", request.attempt));
    };
    if check_replay(&original, &next).is_ok()
        || (!first.run_id.is_empty() && first.run_id == again.run_id)
    {
        return Outcome::Fail(format!(
            "attempt {} replayed attempt {} (run {:?}): transfers are keyed by handoff id alone",
            request.attempt,
            request.attempt - 1,
            again.run_id
        ));
    }
    Outcome::Pass(format!(
        "attempt {}: a new run {:?}: {}",
        request.attempt,
        again.run_id,
        next.summary()
    ))
}

async fn cancel_unknown(session: &mut Session) -> Outcome {
    let id = crate::requests::new_handoff_id();
    match session.client.cancel(&id, 1).await {
        Ok(false) => Outcome::Pass("OK, cancelled = false".into()),
        Ok(true) => Outcome::Fail("cancelled = true for a transfer that never existed".into()),
        Err(status) => Outcome::Fail(format!(
            "{:?} ({}) instead of OK, cancelled = false",
            status.code(),
            status.message()
        )),
    }
}

async fn cancel_after_end(session: &mut Session) -> Outcome {
    let (request, original) = match an_ended_transfer(session).await {
        Ok(ended) => ended,
        Err(reason) => return Outcome::Skip(reason),
    };
    match session
        .client
        .cancel(&request.handoff_id, request.attempt)
        .await
    {
        Ok(false) => {}
        Ok(true) => return Outcome::Fail("cancelled = true for a transfer that had ended".into()),
        Err(status) => {
            return Outcome::Fail(format!(
                "{:?} ({}) instead of OK, cancelled = false",
                status.code(),
                status.message()
            ));
        }
    }
    let mut replay = session
        .client
        .start_observed(
            request.clone(),
            format!("replay after a late cancel: {}", original.label),
        )
        .await;
    replay.finish(session.profile.transfer_timeout).await;
    let replay = session.clean_up(&request, replay).await;
    if terminal_name(&replay) != terminal_name(&original) {
        return Outcome::Fail(format!(
            "the late cancel changed the outcome: {} became {}",
            original.summary(),
            replay.summary()
        ));
    }
    Outcome::Pass(format!(
        "OK, cancelled = false; the outcome stays {}",
        terminal_name(&original)
    ))
}

/// Cancels a holding transfer once it reached `stage` (None: at once);
/// `attempt` 0 cancels whichever attempt runs.
async fn cancel_at(session: &mut Session, stage: Option<i32>, attempt: u32) -> Outcome {
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(reason) => return Outcome::Skip(reason),
    };
    let request = session.request(&sample, mode, session.long_deadline());
    let stage_name = stage.map(kind_name).unwrap_or_else(|| "the start".into());
    let mut follower = session
        .client
        .start_observed(
            request.clone(),
            format!("cancel at {stage_name}: {}", sample.label()),
        )
        .await;
    if let Some(stage) = stage
        && !follower
            .wait_for(|e| e.kind == stage, session.profile.transfer_timeout)
            .await
    {
        let observed = session.clean_up(&request, follower).await;
        return Outcome::Fail(format!(
            "the transfer never reached {stage_name}: {}",
            observed.summary()
        ));
    }
    let cancelled = session.client.cancel(&request.handoff_id, attempt).await;
    follower.finish(session.profile.grace).await;
    let repeated = session.client.cancel(&request.handoff_id, attempt).await;
    let observed = session.clean_up(&request, follower).await;
    match cancelled {
        Ok(true) => {}
        Ok(false) => {
            return Outcome::Fail(format!(
                "CancelTransfer(attempt {attempt}) answered cancelled = false for a running transfer ({})",
                observed.summary()
            ));
        }
        Err(status) => return Outcome::Fail(format!("CancelTransfer failed: {status:?}")),
    }
    if !is_cancelled(&observed) {
        return Outcome::Fail(format!(
            "expected one CANCELLED within {:?} of the cancel; saw {}",
            session.profile.grace,
            observed.summary()
        ));
    }
    match repeated {
        Ok(false) => Outcome::Pass(format!(
            "{}; a second cancel answered cancelled = false",
            observed.summary()
        )),
        other => Outcome::Fail(format!(
            "a second CancelTransfer of the cancelled transfer answered {other:?} instead of cancelled = false"
        )),
    }
}

fn is_deadline_failure(observed: &Observed) -> bool {
    observed.terminal().is_some_and(|t| {
        t.kind == TransferEventKind::Failed as i32
            && t.failure_reason == FailureReason::DeadlineExceeded as i32
    })
}

async fn deadline_expires(session: &mut Session) -> Outcome {
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(reason) => return Outcome::Skip(reason),
    };
    let deadline = session.profile.deadline;
    let request = session.request(&sample, mode, deadline);
    let mut follower = session
        .client
        .start_observed(
            request.clone(),
            format!("deadline in {deadline:?}: {}", sample.label()),
        )
        .await;
    follower.finish(deadline + session.profile.grace).await;
    let observed = session.clean_up(&request, follower).await;
    if is_deadline_failure(&observed) {
        Outcome::Pass(observed.summary())
    } else {
        Outcome::Fail(format!(
            "expected FAILED(DEADLINE_EXCEEDED) within {:?} of a {deadline:?} deadline; saw {}",
            session.profile.grace,
            observed.summary()
        ))
    }
}

async fn deadline_passed(session: &mut Session) -> Outcome {
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(reason) => return Outcome::Skip(reason),
    };
    let mut request = session.request(&sample, mode, Duration::ZERO);
    request.deadline = Some(prost_types::Timestamp::from(
        SystemTime::now() - Duration::from_secs(1),
    ));
    let mut follower = session
        .client
        .start_observed(
            request.clone(),
            format!("deadline passed: {}", sample.label()),
        )
        .await;
    if let Some((Code::InvalidArgument, message)) = follower.refusal() {
        let message = message.to_owned();
        session.clean_up(&request, follower).await;
        return Outcome::Pass(format!("refused: INVALID_ARGUMENT {message}"));
    }
    follower.finish(session.profile.grace).await;
    let observed = session.clean_up(&request, follower).await;
    if is_deadline_failure(&observed) {
        Outcome::Pass(observed.summary())
    } else {
        Outcome::Fail(format!(
            "expected INVALID_ARGUMENT or FAILED(DEADLINE_EXCEEDED) within {:?}; saw {}",
            session.profile.grace,
            observed.summary()
        ))
    }
}
