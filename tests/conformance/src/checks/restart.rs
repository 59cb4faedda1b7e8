//! A restart: the connector killed (SIGKILL, as a crash or an OOM kill
//! would) and started again with the same command must recover every
//! transfer it had accepted from its journal (issue 18): an ended transfer
//! replays the same run, a transfer that was running is re-attached (resumed,
//! or ended with a true outcome such as FAILED(INTERRUPTED)) and never
//! forgotten, and CancelTransfer still tells a transfer it had from one it
//! never saw. Whether a resumed transfer reached a human twice is the
//! platform's to count: each connector's own restart test does.

use baton_proto::connector::v1::CancelOutcome;

use super::{Session, terminal_name, transfers::an_ended_transfer};
use crate::client::ConnectorClient;
use crate::events::{StreamEnd, check_replay};
use crate::report::Outcome;

pub async fn run(session: &mut Session) {
    session
        .check("restart.recovers_from_journal", recovers)
        .await;
}

async fn recovers(session: &mut Session) -> Outcome {
    if session.launched.is_none() {
        return Outcome::Skip(
            "the kit did not launch the connector (--launch): it cannot restart it".into(),
        );
    }
    let (ended_request, ended) = match an_ended_transfer(session).await {
        Ok(ended) => ended,
        Err(reason) => return Outcome::Skip(reason),
    };
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(reason) => return Outcome::Skip(reason),
    };
    let request = session.request(&sample, mode, session.long_deadline());
    let mut before = session
        .client
        .start_observed(
            request.clone(),
            format!("{} across a restart", sample.label()),
        )
        .await;
    session.await_hold(&sample, &mut before).await;
    if before.observed.end != StreamEnd::Open {
        return Outcome::Fail(format!(
            "the holding transfer ended before the restart: {}",
            before.observed.summary()
        ));
    }
    let Some(launched) = session.launched.as_mut() else {
        return Outcome::Skip("not launched".into());
    };
    if let Err(error) = launched.restart().await {
        return Outcome::Fail(format!(
            "cannot kill and start the connector again: {error:#}"
        ));
    }
    session.client = match ConnectorClient::connect(&launched.endpoint).await {
        Ok(client) => client,
        Err(error) => return Outcome::Fail(format!("after the restart: {error:#}")),
    };
    let (settle, grace, timeout) = (
        session.profile.settle,
        session.profile.grace,
        session.profile.transfer_timeout,
    );
    let mut problems = Vec::new();

    // An ended transfer: the same run, replayed in full from the journal.
    let mut replay = session
        .client
        .start_observed(ended_request.clone(), "ended transfer after a restart")
        .await;
    replay.finish(timeout).await;
    let replay = replay.into_observed();
    match check_replay(&ended, &replay) {
        Err(problem) => problems.push(format!(
            "the transfer that had ended before the restart was not replayed from a journal: {problem}"
        )),
        Ok(()) if replay.events.len() != ended.events.len() => problems.push(format!(
            "the transfer that had ended before the restart replays {} instead of {}",
            replay.summary(),
            ended.summary()
        )),
        Ok(()) => {}
    }

    let unknown = crate::requests::new_handoff_id();
    match session.client.cancel_answer(&unknown, 1).await {
        Ok(answer) if answer.outcome() == CancelOutcome::Unknown && !answer.cancelled => {}
        Ok(answer) => problems.push(format!(
            "CancelTransfer of a transfer never started answered {:?}, cancelled = {}; UNKNOWN was due",
            answer.outcome(),
            answer.cancelled
        )),
        Err(status) => problems.push(format!(
            "CancelTransfer of a transfer never started: {:?} ({})",
            status.code(),
            status.message()
        )),
    }

    // The transfer that was running: re-attached, not refused or forgotten.
    let mut again = session
        .client
        .start_observed(request.clone(), "re-attach after a restart")
        .await;
    again.settle(settle, timeout).await;
    if let StreamEnd::Status(code, message) = &again.observed.end {
        problems.push(format!(
            "re-attaching to the transfer that was running was refused: {code:?} ({message})"
        ));
    }
    let resumed = again.observed.summary();
    let cancel = match session
        .client
        .cancel_answer(&request.handoff_id, request.attempt)
        .await
    {
        Ok(answer) => match answer.outcome() {
            outcome @ (CancelOutcome::Cancelled | CancelOutcome::AlreadyEnded) => {
                format!("{outcome:?}")
            }
            outcome => {
                problems.push(format!(
                    "CancelTransfer of the transfer accepted before the restart answered {outcome:?}: \
                     CANCELLED or ALREADY_ENDED was due (is there a journal?)"
                ));
                format!("{outcome:?}")
            }
        },
        Err(status) => {
            problems.push(format!(
                "CancelTransfer after the restart: {:?} ({})",
                status.code(),
                status.message()
            ));
            "error".into()
        }
    };
    again.finish(grace).await;
    let again = again.into_observed();
    if again.terminal().is_none() {
        problems.push(format!(
            "the re-attached transfer did not end within {grace:?} of its cancel: {}",
            again.summary()
        ));
    }
    if !problems.is_empty() {
        return Outcome::Fail(problems.join("; "));
    }
    Outcome::Pass(format!(
        "ended transfer replayed ({}); the running one re-attached ({resumed}), cancel {cancel}, ended {}",
        replay.summary(),
        terminal_name(&again)
    ))
}
