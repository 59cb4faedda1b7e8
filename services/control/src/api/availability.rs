//! Business hours at the API: CheckAvailability (a dry run of routing,
//! asked before the AI promises a human) and the plan CreateHandoff starts
//! with, which leaves out the targets closed now.

use std::time::Duration;

use baton_proto::handoff::v1::{
    CheckAvailabilityRequest, CheckAvailabilityResponse, TargetAttempt,
};
use baton_request_validation::is_language_tag;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::HandoffApi;
use crate::convert;
use crate::domain::closed_message::closed_message;
use crate::domain::hours::OpenNow;
use crate::domain::routing::{TargetNow, Unroutable};
use crate::domain::{PlannedTarget, RequestedTarget};
use crate::error::ControlError;

impl HandoffApi {
    /// CheckAvailability for `tenant`.
    pub(super) fn check_availability(
        &self,
        tenant: &str,
        request: CheckAvailabilityRequest,
    ) -> Result<CheckAvailabilityResponse, ControlError> {
        if !request.language.is_empty() && !is_language_tag(&request.language) {
            return Err(ControlError::invalid_field(
                "language",
                "must be a BCP 47 tag such as \"en-US\"",
            ));
        }
        if request.intent.len() > 128 {
            return Err(ControlError::invalid_field(
                "intent",
                "is longer than 128 bytes",
            ));
        }
        let target = convert::types::requested_target_from(request.target.unwrap_or_default());
        let now = Timestamp::now();
        let plan = self.plan_now(tenant, &target, &request.intent, &request.language, now)?;
        let closed_targets = plan.iter().filter(|t| !t.open.is_open()).count();
        let closed_targets = u32::try_from(closed_targets).unwrap_or(u32::MAX);
        if let Some(first) = plan.iter().find(|t| t.open.is_open()) {
            let (message, language) = self
                .messages
                .for_tenant(tenant)
                .for_language(&request.language);
            let closes_at = match first.open {
                OpenNow::Open { closes_at } => closes_at,
                OpenNow::Closed { .. } => None,
            };
            return Ok(CheckAvailabilityResponse {
                open: true,
                target: Some(TargetAttempt {
                    attempt: 1,
                    connector: first.planned.connector.clone(),
                    target: Some(convert::types::target(&first.planned.target)),
                }),
                closes_at: closes_at.map(protobuf_time),
                opens_at: None,
                time_zone: first.time_zone.clone().unwrap_or_default(),
                customer_message: message.to_owned(),
                customer_message_language: language.to_owned(),
                closed_targets,
            });
        }
        let opening = next_opening(&plan);
        let zone = opening.and_then(|(_, zone)| TimeZone::get(zone).ok());
        let (message, language) = closed_message(
            &request.language,
            now,
            opening.zip(zone.as_ref()).map(|((at, _), zone)| (at, zone)),
        );
        Ok(CheckAvailabilityResponse {
            open: false,
            target: None,
            closes_at: None,
            opens_at: opening.map(|(at, _)| protobuf_time(at)),
            time_zone: opening.map(|(_, zone)| zone.to_owned()).unwrap_or_default(),
            customer_message: message,
            customer_message_language: language.to_owned(),
            closed_targets,
        })
    }

    /// The plan CreateHandoff starts: the targets open now, in order.
    /// `Closed` when business hours close all of them.
    pub(super) fn open_plan(
        &self,
        tenant: &str,
        target: &RequestedTarget,
        intent: &str,
        language: &str,
    ) -> Result<Vec<PlannedTarget>, ControlError> {
        let now = Timestamp::now();
        let plan = self.plan_now(tenant, target, intent, language, now)?;
        let opens_at = next_opening(&plan).map(|(at, _)| at);
        let open: Vec<PlannedTarget> = plan
            .into_iter()
            .filter(|t| t.open.is_open())
            .map(|t| t.planned)
            .collect();
        if open.is_empty() {
            let retry_in = opens_at.map(|at| {
                Duration::from_secs(
                    u64::try_from(at.as_second() - now.as_second()).unwrap_or_default(),
                )
            });
            return Err(ControlError::Closed { retry_in });
        }
        Ok(open)
    }

    fn plan_now(
        &self,
        tenant: &str,
        target: &RequestedTarget,
        intent: &str,
        language: &str,
        now: Timestamp,
    ) -> Result<Vec<TargetNow>, ControlError> {
        self.router
            .for_tenant(tenant)
            .plan_at(target, intent, language, now)
            .map_err(|Unroutable { field, description }| {
                ControlError::invalid_field(field, description)
            })
    }
}

/// The earliest next opening of the plan's closed targets, with its zone.
fn next_opening(plan: &[TargetNow]) -> Option<(Timestamp, &str)> {
    plan.iter()
        .filter_map(|t| match (t.open, &t.time_zone) {
            (OpenNow::Closed { opens_at: Some(at) }, Some(zone)) => Some((at, zone.as_str())),
            _ => None,
        })
        .min_by_key(|(at, _)| *at)
}

fn protobuf_time(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    }
}
