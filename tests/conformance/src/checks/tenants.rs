//! Tenants: every request carries one; a connector dedicated to some
//! tenants refuses the others with INVALID_ARGUMENT naming `tenant`, a
//! shared one serves them; and no tenant re-attaches to or cancels
//! another's transfer. The kit's own tenant is [`requests::TENANT`]; the
//! profile's `foreign_tenant` names one the connector is configured not to
//! serve (none: the connector is taken to be shared).

use baton_proto::connector::v1::CancelOutcome;
use tonic::Code;

use super::Session;
use super::capabilities::{any_advertised_sample, expect_refusal};
use crate::report::Outcome;
use crate::requests;

/// The tenant the kit uses for "someone else" on a shared connector.
const OTHER_TENANT: &str = "conformance-other";

pub async fn run(session: &mut Session) {
    session.check("tenants.foreign", foreign).await;
    session.check("tenants.isolated", isolated).await;
}

/// A connector dedicated to other tenants refuses `foreign_tenant`; a
/// shared one serves a tenant besides the kit's.
async fn foreign(session: &mut Session) -> Outcome {
    let Some(sample) = any_advertised_sample(session) else {
        return Outcome::Skip("no target kind is advertised".into());
    };
    let Some(mode) = session.mode_for(&sample) else {
        return Outcome::Skip("no transfer mode is advertised".into());
    };
    let mut request = session.request(&sample, mode, session.long_deadline());
    match session.profile.foreign_tenant.clone() {
        Some(foreign) => {
            request.tenant.clone_from(&foreign);
            expect_refusal(
                session,
                request,
                format!("StartTransfer of tenant {foreign:?}"),
                &[Code::InvalidArgument],
                Some("tenant"),
            )
            .await
        }
        None => {
            request.tenant = OTHER_TENANT.into();
            let label = format!("StartTransfer of tenant {OTHER_TENANT:?}");
            let follower = session.start_settled(request.clone(), label).await;
            let refusal = follower
                .refusal()
                .map(|(code, message)| format!("{code:?}: {message}"));
            session.clean_up_as(OTHER_TENANT, &request, follower).await;
            match refusal {
                Some(refusal) => Outcome::Fail(format!(
                    "refused tenant {OTHER_TENANT:?} ({refusal}); a connector dedicated to some \
                     tenants is checked with foreign_tenant (--foreign-tenant) set"
                )),
                None => Outcome::Pass(format!("shared: tenant {OTHER_TENANT:?} served too")),
            }
        }
    }
}

/// A holding transfer of the kit's tenant is neither re-attached to nor
/// cancelled by another tenant; its own tenant still cancels it.
async fn isolated(session: &mut Session) -> Outcome {
    let (sample, mode) = match session.holding() {
        Ok(holding) => holding,
        Err(why) => return Outcome::Skip(why),
    };
    let other = session
        .profile
        .foreign_tenant
        .clone()
        .unwrap_or_else(|| OTHER_TENANT.into());
    let request = session.request(&sample, mode, session.long_deadline());
    let label = format!("holding transfer: {}", sample.label());
    let mut follower = session.client.start_observed(request.clone(), label).await;
    session.await_hold(&sample, &mut follower).await;
    let mut problems = Vec::new();

    let mut theirs = request.clone();
    theirs.tenant.clone_from(&other);
    let reattach = session
        .client
        .start_observed(theirs, format!("re-attach as {other:?}"))
        .await;
    match reattach.refusal() {
        Some((Code::InvalidArgument, _)) => {}
        Some((code, message)) => problems.push(format!(
            "re-attach as {other:?}: {code:?} ({message}) instead of INVALID_ARGUMENT"
        )),
        None => problems.push(format!(
            "re-attach as {other:?} was accepted: another tenant's transfer"
        )),
    }
    drop(reattach);

    match session
        .client
        .cancel_as(&other, &request.handoff_id, request.attempt)
        .await
    {
        Ok(answer) if answer.outcome() == CancelOutcome::Unknown => {}
        Err(status) if status.code() == Code::InvalidArgument => {}
        Ok(answer) => problems.push(format!(
            "cancel as {other:?} answered {}",
            answer.outcome().as_str_name()
        )),
        Err(status) => problems.push(format!(
            "cancel as {other:?}: {:?} ({})",
            status.code(),
            status.message()
        )),
    }
    let own = session
        .client
        .cancel_answer(&request.handoff_id, request.attempt)
        .await;
    match own {
        Ok(answer) if answer.outcome() == CancelOutcome::Cancelled => {}
        Ok(answer) => problems.push(format!(
            "the transfer's own tenant then got {} (was it cancelled by the other?)",
            answer.outcome().as_str_name()
        )),
        Err(status) => problems.push(format!(
            "cancel as {:?}: {:?} ({})",
            requests::TENANT,
            status.code(),
            status.message()
        )),
    }
    session.clean_up(&request, follower).await;
    if problems.is_empty() {
        Outcome::Pass(format!(
            "tenant {other:?} neither re-attached nor cancelled; {:?} cancelled it",
            requests::TENANT
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}
