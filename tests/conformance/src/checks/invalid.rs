//! Invalid requests get INVALID_ARGUMENT naming the field; context within
//! the advertised limits is taken, context beyond them is refused.

use baton_proto::connector::v1::StartTransferRequest;
use baton_proto::types::v1::{Target, target};
use tonic::Code;

use super::Session;
use super::capabilities::{any_advertised_sample, expect_refusal};
use crate::profile::Expectation;
use crate::report::Outcome;
use crate::requests;

/// One malformed request: the check's id suffix, the field to be named,
/// and how to break a good request.
type Breakage = (&'static str, &'static str, fn(&mut StartTransferRequest));

const BREAKAGES: [Breakage; 7] = [
    ("missing_handoff_id", "handoff_id", |r| r.handoff_id.clear()),
    ("missing_attempt", "attempt", |r| r.attempt = 0),
    ("missing_target", "target", |r| r.target = None),
    ("route_target", "target", |r| {
        r.target = Some(Target {
            kind: Some(target::Kind::Route("support".into())),
        })
    }),
    ("unspecified_mode", "mode", |r| r.mode = 0),
    ("missing_deadline", "deadline", |r| r.deadline = None),
    ("missing_tenant", "tenant", |r| r.tenant.clear()),
];

pub async fn run(session: &mut Session) {
    for (name, field, breakage) in BREAKAGES {
        session
            .check(&format!("invalid.{name}"), async |s: &mut Session| {
                invalid(s, name, field, breakage).await
            })
            .await;
    }
    // A connector without `callbacks` is never sent a callback: the
    // control service refuses such a handoff itself.
    if session.info.callbacks {
        session.check("callbacks.refused", callback_refused).await;
    }
    session.check("context.at_limits_accepted", at_limits).await;
    session.check("context.oversize_refused", oversize).await;
}

async fn invalid(
    session: &mut Session,
    name: &str,
    field: &str,
    breakage: fn(&mut StartTransferRequest),
) -> Outcome {
    let Some(sample) = any_advertised_sample(session) else {
        return Outcome::Skip("no target kind is advertised".into());
    };
    let Some(mode) = session.advertised_modes().first().copied() else {
        return Outcome::Skip("no transfer mode is advertised".into());
    };
    let mut request = session.request(&sample, mode, session.long_deadline());
    breakage(&mut request);
    expect_refusal(
        session,
        request,
        format!("invalid request: {name}"),
        &[Code::InvalidArgument],
        Some(field),
    )
    .await
}

/// A connector that calls back refuses a callback the customer did not
/// consent to, naming `callback.consent`, before anything rings.
async fn callback_refused(session: &mut Session) -> Outcome {
    let Some(sample) = any_advertised_sample(session) else {
        return Outcome::Skip("no target kind is advertised".into());
    };
    let Some(mode) = session.advertised_modes().first().copied() else {
        return Outcome::Skip("no transfer mode is advertised".into());
    };
    let mut request = session.request(&sample, mode, session.long_deadline());
    request.callback = Some(baton_proto::types::v1::Callback {
        number: "+15550100123".into(),
        consent: false,
        ..Default::default()
    });
    expect_refusal(
        session,
        request,
        "a callback without consent".into(),
        &[Code::InvalidArgument],
        Some("callback.consent"),
    )
    .await
}

/// A transfer whose every size-limited mechanism is filled exactly to its
/// advertised limit runs as its sample says.
async fn at_limits(session: &mut Session) -> Outcome {
    let limited = requests::limited(&session.info.context_capabilities);
    if limited.is_empty() {
        return Outcome::Skip("no size-limited context mechanism is advertised".into());
    }
    let sample = [Expectation::Connects, Expectation::Holds]
        .into_iter()
        .flat_map(|expect| session.samples(expect))
        .find_map(|s| session.mode_for(&s).map(|m| (s, m)));
    let Some((sample, mode)) = sample else {
        return Outcome::Skip("no sample target that connects or holds".into());
    };
    let mut request = session.request(&sample, mode, session.long_deadline());
    let envelope = request.envelope.get_or_insert_default();
    for (mechanism, limit) in &limited {
        requests::resize(envelope, *mechanism, *limit);
    }
    let label = format!("context at the limits: {}", sample.label());
    let mut follower = session.client.start_observed(request.clone(), label).await;
    match sample.expect {
        Expectation::Holds => session.await_hold(&sample, &mut follower).await,
        _ => {
            follower.finish(session.profile.transfer_timeout).await;
        }
    }
    let verdict = super::judge(&sample, &follower.observed);
    session.clean_up(&request, follower).await;
    let sizes = limited
        .iter()
        .map(|(m, l)| format!("{}={l}", m.as_str_name()))
        .collect::<Vec<_>>()
        .join(", ");
    match verdict {
        Ok(summary) => Outcome::Pass(format!("{sizes}: {summary}")),
        Err(problem) => Outcome::Fail(format!("with {sizes}: {problem}")),
    }
}

/// Each size-limited mechanism one byte over its limit is refused with
/// INVALID_ARGUMENT naming the envelope.
async fn oversize(session: &mut Session) -> Outcome {
    let limited = requests::limited(&session.info.context_capabilities);
    if limited.is_empty() {
        return Outcome::Skip("no size-limited context mechanism is advertised".into());
    }
    let Some(sample) = any_advertised_sample(session) else {
        return Outcome::Skip("no target kind is advertised".into());
    };
    let Some(mode) = session.advertised_modes().first().copied() else {
        return Outcome::Skip("no transfer mode is advertised".into());
    };
    let mut refused = Vec::new();
    let mut problems = Vec::new();
    for (mechanism, limit) in limited {
        let mut request = session.request(&sample, mode, session.long_deadline());
        requests::resize(
            request.envelope.get_or_insert_default(),
            mechanism,
            limit + 1,
        );
        let name = mechanism.as_str_name();
        match expect_refusal(
            session,
            request,
            format!("{name} over its limit of {limit} bytes"),
            &[Code::InvalidArgument],
            Some("envelope"),
        )
        .await
        {
            Outcome::Pass(_) => refused.push(name),
            other => problems.push(format!("{name} at {} bytes: {}", limit + 1, other.text())),
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!("refused: {}", refused.join(", ")))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}
