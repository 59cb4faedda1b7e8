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
use crate::circuit::CircuitState;
use crate::connector::AvailabilityQuery;
use crate::convert;
use crate::domain::availability::{Channel, TargetAvailability, open_message};
use crate::domain::closed_message::closed_message;
use crate::domain::hours::OpenNow;
use crate::domain::routing::{TargetNow, Unroutable};
use crate::domain::{PlannedTarget, RequestedTarget};
use crate::error::ControlError;

impl HandoffApi {
    /// CheckAvailability for `tenant`: business hours decide whether a
    /// target is open; the connector of the one that would take the
    /// handoff says who is there, when it reports availability.
    pub(super) async fn check_availability(
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
        let channel = convert::types::channel_from(request.channel());
        let target = convert::types::requested_target_from(request.target.unwrap_or_default());
        let now = Timestamp::now();
        let plan = self.plan_now(tenant, &target, &request.intent, &request.language, now)?;
        let closed_targets = plan.iter().filter(|t| !t.open.is_open()).count();
        let closed_targets = u32::try_from(closed_targets).unwrap_or(u32::MAX);
        let mut open = plan.iter().filter(|t| t.open.is_open());
        if let Some(first) = open.next() {
            let fallback = open.next();
            let availability = self
                .availability_at(tenant, &first.planned, &request.language, channel)
                .await;
            let messages = self.messages.for_tenant(tenant);
            let (connecting, language) = messages.for_language(&request.language);
            let (message, language) = match &availability {
                Some(availability) => open_message(
                    connecting,
                    language,
                    availability,
                    fallback.is_some(),
                    messages.templates_for(&request.language),
                ),
                None => (connecting.to_owned(), language.to_owned()),
            };
            let closes_at = match first.open {
                OpenNow::Open { closes_at } => closes_at,
                OpenNow::Closed { .. } => None,
            };
            return Ok(CheckAvailabilityResponse {
                open: true,
                target: Some(attempt(1, &first.planned)),
                closes_at: closes_at.map(protobuf_time),
                opens_at: None,
                time_zone: first.time_zone.clone().unwrap_or_default(),
                customer_message: message,
                customer_message_language: language,
                closed_targets,
                availability: availability.as_ref().map(convert::types::availability),
                fallback: fallback.map(|next| attempt(2, &next.planned)),
            });
        }
        let opening = next_opening(&plan);
        let zone = opening.and_then(|(_, zone)| TimeZone::get(zone).ok());
        let (message, language) = closed_message(
            &request.language,
            now,
            opening.zip(zone.as_ref()).map(|((at, _), zone)| (at, zone)),
            self.messages
                .for_tenant(tenant)
                .templates_for(&request.language),
        );
        Ok(CheckAvailabilityResponse {
            open: false,
            target: None,
            closes_at: None,
            opens_at: opening.map(|(at, _)| protobuf_time(at)),
            time_zone: opening.map(|(_, zone)| zone.to_owned()).unwrap_or_default(),
            customer_message: message,
            customer_message_language: language,
            closed_targets,
            availability: None,
            fallback: None,
        })
    }

    /// Who is there at `planned`, when its connector reports availability
    /// and answers within its call timeout; None otherwise (the check then
    /// says only what business hours say). Logged, never an error: the
    /// answer is advice, and CreateHandoff will find out for itself.
    async fn availability_at(
        &self,
        tenant: &str,
        planned: &PlannedTarget,
        language: &str,
        channel: Channel,
    ) -> Option<TargetAvailability> {
        // A connector whose circuit is not closed is failing: asking it
        // would wait out its timeout for an answer nobody can trust.
        let breaker = self.dispatcher.breakers().get(&planned.connector);
        if breaker.is_some_and(|b| b.state() != CircuitState::Closed) {
            return None;
        }
        let connector = self.dispatcher.connector(&planned.connector).ok()?;
        let (info, _) = connector.recent_check().await.ok()?;
        if !info.availability {
            return None;
        }
        let query = AvailabilityQuery {
            tenant: tenant.to_owned(),
            target: planned.target.clone(),
            language: language.to_owned(),
            channel,
        };
        match connector.availability(query).await {
            Ok(availability) => Some(availability),
            Err(error) => {
                tracing::warn!(connector = %planned.connector, %error, "GetAvailability failed; answering from business hours only");
                None
            }
        }
    }

    /// The plan CreateHandoff starts: the targets open at `at_ms` (now,
    /// or a callback window's start), in order. `Closed` when business
    /// hours close all of them.
    pub(super) fn open_plan_at(
        &self,
        tenant: &str,
        target: &RequestedTarget,
        intent: &str,
        language: &str,
        at_ms: i64,
    ) -> Result<Vec<PlannedTarget>, ControlError> {
        let now = Timestamp::from_millisecond(at_ms).unwrap_or_else(|_| Timestamp::now());
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

fn attempt(number: u32, planned: &PlannedTarget) -> TargetAttempt {
    TargetAttempt {
        attempt: number,
        connector: planned.connector.clone(),
        target: Some(convert::types::target(&planned.target)),
    }
}

fn protobuf_time(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    }
}
