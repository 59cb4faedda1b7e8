//! Availability (`GetAvailability`). A connector without `availability`
//! must answer it with UNIMPLEMENTED. One with it must refuse a request
//! without a tenant or naming a route (INVALID_ARGUMENT naming the field),
//! and answer for each sample target of an advertised kind with figures
//! that hold together: a basis, no more humans free than signed in, a
//! position of 1 or more, and an estimated wait only with how it was made.

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{GetAvailabilityRequest, GetAvailabilityResponse};
use baton_proto::types::v1::{self as pb, AvailabilityBasis, WaitEstimateMethod};
use tokio::time::timeout;
use tonic::Code;

use super::Session;
use crate::client::CALL_TIMEOUT;
use crate::profile::Expectation;
use crate::report::Outcome;
use crate::requests::{self, TENANT};

async fn ask(
    session: &Session,
    tenant: &str,
    target: pb::target::Kind,
) -> Result<GetAvailabilityResponse, tonic::Status> {
    let mut client = ConnectorServiceClient::new(session.client.channel.clone());
    let request = GetAvailabilityRequest {
        target: Some(pb::Target { kind: Some(target) }),
        tenant: tenant.into(),
        language: "en-US".into(),
        channel: pb::Channel::Voice as i32,
    };
    timeout(CALL_TIMEOUT, client.get_availability(request))
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("GetAvailability: no answer"))?
        .map(tonic::Response::into_inner)
}

fn named_field(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Whether the figures hold together; the problem otherwise.
fn consistent(availability: &pb::Availability) -> Result<(), String> {
    if availability.basis() == AvailabilityBasis::Unspecified {
        return Err("basis is unspecified".into());
    }
    if let (Some(signed_in), Some(free)) =
        (availability.agents_signed_in, availability.agents_available)
        && free > signed_in
    {
        return Err(format!("{free} humans free of {signed_in} signed in"));
    }
    if availability.position == Some(0) {
        return Err("position 0 (positions start at 1)".into());
    }
    match (&availability.estimated_wait, availability.wait_estimate()) {
        (Some(wait), _) if wait.seconds < 0 || wait.nanos < 0 => {
            Err(format!("a negative estimated wait {wait:?}"))
        }
        (Some(_), WaitEstimateMethod::Unspecified) => {
            Err("an estimated wait without wait_estimate".into())
        }
        _ => Ok(()),
    }
}

pub async fn run(session: &mut Session) {
    if !session.info.availability {
        session
            .check("availability.unimplemented", async |s| {
                let queue = requests::synthesized_target(pb::TargetKind::Queue)
                    .expect("queues can be synthesized");
                match ask(s, TENANT, queue).await {
                    Err(status) if status.code() == Code::Unimplemented => {
                        Outcome::Pass("UNIMPLEMENTED".into())
                    }
                    Err(status) => Outcome::Fail(format!(
                        "answered {:?} ({}), not UNIMPLEMENTED",
                        status.code(),
                        status.message()
                    )),
                    Ok(answer) => Outcome::Fail(format!(
                        "a connector without availability answered {answer:?}"
                    )),
                }
            })
            .await;
        return;
    }
    session
        .check("availability.invalid", async |s| {
            let queue = requests::synthesized_target(pb::TargetKind::Queue)
                .expect("queues can be synthesized");
            let cases = [
                ("", queue, "tenant"),
                (
                    TENANT,
                    pb::target::Kind::Route("conformance".into()),
                    "target.route",
                ),
            ];
            for (tenant, target, field) in cases {
                match ask(s, tenant, target).await {
                    Err(status)
                        if status.code() == Code::InvalidArgument
                            && named_field(&status).iter().any(|f| f == field) => {}
                    Err(status) => {
                        return Outcome::Fail(format!(
                            "expected INVALID_ARGUMENT naming {field}, got {:?} ({}) naming {:?}",
                            status.code(),
                            status.message(),
                            named_field(&status)
                        ));
                    }
                    Ok(answer) => {
                        return Outcome::Fail(format!(
                            "expected INVALID_ARGUMENT naming {field}, got {answer:?}"
                        ));
                    }
                }
            }
            Outcome::Pass("no tenant and a route are refused, naming the field".into())
        })
        .await;
    session
        .check("availability.answers", async |s| {
            let samples: Vec<_> = [Expectation::Holds, Expectation::Connects]
                .into_iter()
                .flat_map(|expect| s.samples(expect))
                .collect();
            if samples.is_empty() {
                return Outcome::Skip("no sample target that holds or connects".into());
            }
            for sample in &samples {
                let Ok(target) = sample.target() else {
                    continue;
                };
                let answer = match ask(s, TENANT, target.clone()).await {
                    Ok(answer) => answer,
                    Err(status) => {
                        return Outcome::Fail(format!(
                            "{target:?}: {:?} ({})",
                            status.code(),
                            status.message()
                        ));
                    }
                };
                let Some(availability) = answer.availability else {
                    return Outcome::Fail(format!("{target:?}: an answer without availability"));
                };
                if let Err(problem) = consistent(&availability) {
                    return Outcome::Fail(format!("{target:?}: {problem}"));
                }
            }
            Outcome::Pass(format!(
                "{} sample targets answered with consistent figures",
                samples.len()
            ))
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_that_do_not_hold_together_are_named() {
        let good = pb::Availability {
            basis: AvailabilityBasis::Exact as i32,
            agents_signed_in: Some(2),
            agents_available: Some(1),
            contacts_waiting: Some(0),
            position: Some(1),
            estimated_wait: Some(prost_types::Duration::default()),
            wait_estimate: WaitEstimateMethod::HandleTimes as i32,
        };
        assert_eq!(consistent(&good), Ok(()));
        let bad = [
            pb::Availability { basis: 0, ..good },
            pb::Availability {
                agents_available: Some(3),
                ..good
            },
            pb::Availability {
                position: Some(0),
                ..good
            },
            pb::Availability {
                wait_estimate: 0,
                ..good
            },
            pb::Availability {
                estimated_wait: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..good
            },
        ];
        for availability in bad {
            assert!(consistent(&availability).is_err(), "{availability:?}");
        }
    }
}
