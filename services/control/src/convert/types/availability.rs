//! Channels and a target's availability.

use baton_proto::types::v1 as pb;

use std::time::Duration;

use crate::domain::availability::{AvailabilityBasis, Channel, TargetAvailability, WaitEstimate};

pub fn channel(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Voice => pb::Channel::Voice,
        Channel::Chat => pb::Channel::Chat,
    }
}

/// Voice unless the runtime said chat.
pub fn channel_from(channel: pb::Channel) -> Channel {
    match channel {
        pb::Channel::Chat => Channel::Chat,
        _ => Channel::Voice,
    }
}

/// A connector's availability; refused when it does not say its basis
/// (the contract requires one), so that unqualified figures never reach
/// a runtime as if they were exact.
pub fn availability_from(wire: pb::Availability) -> Result<TargetAvailability, String> {
    let basis = match wire.basis() {
        pb::AvailabilityBasis::Exact => AvailabilityBasis::Exact,
        pb::AvailabilityBasis::Reported => AvailabilityBasis::Reported,
        pb::AvailabilityBasis::Unspecified => {
            return Err("GetAvailability answered without a basis".into());
        }
    };
    let wait_estimate = match wire.wait_estimate() {
        pb::WaitEstimateMethod::HandleTimes => Some(WaitEstimate::HandleTimes),
        pb::WaitEstimateMethod::PlatformStatistic => Some(WaitEstimate::PlatformStatistic),
        pb::WaitEstimateMethod::Unspecified => None,
    };
    let estimated_wait = match wire.estimated_wait {
        Some(wait) => Some(
            Duration::try_from(wait)
                .map_err(|_| "GetAvailability answered a negative estimated_wait".to_owned())?,
        ),
        None => None,
    };
    Ok(TargetAvailability {
        basis,
        agents_signed_in: wire.agents_signed_in,
        agents_available: wire.agents_available,
        contacts_waiting: wire.contacts_waiting,
        position: wire.position,
        estimated_wait,
        wait_estimate,
    })
}

pub fn availability(availability: &TargetAvailability) -> pb::Availability {
    pb::Availability {
        basis: match availability.basis {
            AvailabilityBasis::Exact => pb::AvailabilityBasis::Exact,
            AvailabilityBasis::Reported => pb::AvailabilityBasis::Reported,
        } as i32,
        agents_signed_in: availability.agents_signed_in,
        agents_available: availability.agents_available,
        contacts_waiting: availability.contacts_waiting,
        position: availability.position,
        estimated_wait: availability
            .estimated_wait
            .and_then(|wait| prost_types::Duration::try_from(wait).ok()),
        wait_estimate: match availability.wait_estimate {
            Some(WaitEstimate::HandleTimes) => pb::WaitEstimateMethod::HandleTimes,
            Some(WaitEstimate::PlatformStatistic) => pb::WaitEstimateMethod::PlatformStatistic,
            None => pb::WaitEstimateMethod::Unspecified,
        } as i32,
    }
}
