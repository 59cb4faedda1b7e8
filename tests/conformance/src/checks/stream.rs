//! The rules of every stream, checked over all the streams the other
//! checks read; and shutdown, which drains (only for a launched connector).

use tonic::Code;

use super::Session;
use crate::events::{Observed, StreamEnd, check_fields, check_sequence, check_terminal};
use crate::report::Outcome;

pub async fn run_event_checks(session: &mut Session) {
    type Rule = fn(&Observed) -> Result<(), String>;
    let rules: [(&str, Rule); 3] = [
        ("events.sequence_gapless", check_sequence),
        ("events.one_terminal_last", check_terminal),
        ("events.fields", check_fields),
    ];
    for (id, rule) in rules {
        session
            .check(id, async move |s: &mut Session| over_journal(s, rule))
            .await;
    }
}

fn over_journal(session: &Session, rule: fn(&Observed) -> Result<(), String>) -> Outcome {
    let streams: Vec<&Observed> = session
        .journal
        .iter()
        .filter(|o| !o.events.is_empty())
        .collect();
    if streams.is_empty() {
        return Outcome::Skip("no transfer produced events (no usable sample targets)".into());
    }
    let problems: Vec<String> = streams.iter().filter_map(|o| rule(o).err()).collect();
    if problems.is_empty() {
        let events: usize = streams.iter().map(|o| o.events.len()).sum();
        Outcome::Pass(format!("{} streams, {events} events", streams.len()))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

pub async fn run_shutdown(session: &mut Session) {
    session.check("shutdown.drains", drains).await;
}

/// SIGTERM during a transfer: the connector drains (for at most the
/// profile's `drain`), then the stream ends cleanly (its terminal event,
/// or UNAVAILABLE so that the caller re-attaches), and the process exits 0.
async fn drains(session: &mut Session) -> Outcome {
    if session.launched.is_none() {
        return Outcome::Skip(
            "the kit did not launch the connector (--launch): it cannot stop it".into(),
        );
    }
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(reason) => return Outcome::Skip(reason),
    };
    let request = session.request(&sample, mode, session.long_deadline());
    let mut follower = session
        .client
        .start_observed(
            request.clone(),
            format!("SIGTERM during {}", sample.label()),
        )
        .await;
    session.await_hold(&sample, &mut follower).await;
    let grace = session.profile.drain + session.profile.grace;
    let Some(launched) = session.launched.as_mut() else {
        return Outcome::Skip("not launched".into());
    };
    if let Err(error) = launched.terminate().await {
        return Outcome::Fail(format!("cannot send SIGTERM: {error:#}"));
    }
    follower.finish(grace).await;
    let observed = follower.into_observed();
    // The connection goes with the process: nothing else will be called.
    let exit = launched.wait(grace).await;
    session.keep(observed.clone());
    let stream_ok = match &observed.end {
        StreamEnd::Status(Code::Unavailable, _) => true,
        StreamEnd::Closed => observed.terminal().is_some(),
        _ => false,
    };
    if !stream_ok {
        return Outcome::Fail(format!(
            "after SIGTERM the stream must end with a terminal event or UNAVAILABLE within {grace:?}; saw {}",
            observed.summary()
        ));
    }
    match exit {
        Some(status) if status.success() => {
            Outcome::Pass(format!("{}; exit status 0", observed.summary()))
        }
        Some(status) => Outcome::Fail(format!(
            "{}; but the process exited with {status}",
            observed.summary()
        )),
        None => Outcome::Fail(format!(
            "{}; but the process did not exit within {grace:?} of SIGTERM",
            observed.summary()
        )),
    }
}
