//! Who is there to take a queue transfer (GetAvailability), from the
//! statistics TaskRouter publishes for the queue's TaskQueue:
//!
//! - `GET /v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics?TaskChannel=…`
//!   for the workers and the tasks now;
//! - `GET /v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/CumulativeStatistics?TaskChannel=…&Minutes=15`
//!   for the average wait of the tasks accepted lately.
//!
//! Authenticated and retried as every call of the connector is
//! ([`CallsApi::request`]); nothing is created or changed.

use std::sync::Arc;
use std::time::Duration;

use baton_connector_sdk::{
    Availability, AvailabilityBasis, AvailabilityFigures, Channel, Status, WaitEstimateMethod,
};
use serde_json::Value;

use crate::api::{CallsApi, UpdateError};
use crate::config::TwilioConfig;

/// The window of the cumulative statistics the estimated wait comes from:
/// recent enough to follow the queue's day, long enough to hold accepted
/// tasks. (Twilio's own default is 15 minutes too; it is sent anyway so
/// the figure does not change if that default does.)
const WAIT_WINDOW_MINUTES: u32 = 15;

/// The TaskQueue statistics of one workspace.
#[derive(Debug)]
pub struct StatisticsApi {
    api: Arc<CallsApi>,
    taskrouter: String,
}

/// A TaskQueue's figures now, as TaskRouter reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealTime {
    pub eligible_workers: u32,
    pub available_workers: u32,
    pub pending_tasks: u32,
    pub reserved_tasks: u32,
}

/// A non-negative count field of a statistics resource, or why it is not.
fn count(resource: &Value, path: &[&str]) -> Result<u32, String> {
    let mut value = resource;
    for key in path {
        value = &value[*key];
    }
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("TaskRouter's statistics have no count {}", path.join(".")))
}

impl RealTime {
    /// Reads the fields of a TaskQueue RealTimeStatistics resource.
    pub fn from_resource(resource: &Value) -> Result<Self, String> {
        Ok(Self {
            eligible_workers: count(resource, &["total_eligible_workers"])?,
            available_workers: count(resource, &["total_available_workers"])?,
            pending_tasks: count(resource, &["tasks_by_status", "pending"])?,
            reserved_tasks: count(resource, &["tasks_by_status", "reserved"])?,
        })
    }

    /// The tasks ahead of a new one: the pending ones, and the reserved
    /// ones too: a reservation is an offer the worker has not accepted,
    /// and a rejected or timed-out one puts the task back ahead of the new
    /// contact. Assigned and wrapping tasks are with a worker already.
    pub fn waiting(&self) -> u32 {
        self.pending_tasks.saturating_add(self.reserved_tasks)
    }
}

/// The TaskChannel a handoff's channel is counted in (TaskRouter's
/// built-in unique names).
fn task_channel(channel: Channel) -> &'static str {
    match channel {
        Channel::Chat => "chat",
        _ => "voice",
    }
}

impl StatisticsApi {
    pub fn new(config: &TwilioConfig, api: Arc<CallsApi>) -> Self {
        Self {
            api,
            taskrouter: config.taskrouter_api_base.trim_end_matches('/').to_owned(),
        }
    }

    fn url(&self, workspace: &str, task_queue: &str, statistics: &str, query: &str) -> String {
        format!(
            "{}/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/{statistics}?{query}",
            self.taskrouter
        )
    }

    /// Who is there in `task_queue` of `workspace` for a contact of
    /// `channel`; `queue` names it in errors.
    pub async fn availability(
        &self,
        workspace: &str,
        task_queue: &str,
        queue: &str,
        channel: Channel,
    ) -> Result<Availability, Status> {
        let query = serde_urlencoded::to_string([("TaskChannel", task_channel(channel))])
            .map_err(|e| Status::internal(format!("cannot encode the request: {e}")))?;
        let resource = self
            .api
            .request(
                &self.url(workspace, task_queue, "RealTimeStatistics", &query),
                None,
            )
            .await
            .map_err(|error| status(error, task_queue, queue))?;
        let now = RealTime::from_resource(&resource)
            .map_err(|reason| Status::unavailable(format!("TaskQueue {task_queue}: {reason}")))?;
        let waiting = now.waiting();
        let estimated_wait = if now.available_workers > waiting {
            // A worker is free beyond every task ahead: TaskRouter offers
            // the new task at once.
            Some(Duration::ZERO)
        } else {
            self.average_wait(workspace, task_queue, queue, channel)
                .await?
        };
        Ok(AvailabilityFigures {
            basis: AvailabilityBasis::Reported,
            agents_signed_in: Some(now.eligible_workers),
            agents_available: Some(now.available_workers),
            contacts_waiting: Some(waiting),
            estimated_wait,
            wait_estimate: WaitEstimateMethod::PlatformStatistic,
        }
        .answer())
    }

    /// TaskRouter's average time from task creation to acceptance in the
    /// TaskQueue over the last minutes: the platform's own figure of how
    /// long a contact waits there. None when no task was accepted in that
    /// window (TaskRouter then reports 0, which would promise no wait).
    async fn average_wait(
        &self,
        workspace: &str,
        task_queue: &str,
        queue: &str,
        channel: Channel,
    ) -> Result<Option<Duration>, Status> {
        let minutes = WAIT_WINDOW_MINUTES.to_string();
        let query = serde_urlencoded::to_string([
            ("TaskChannel", task_channel(channel)),
            ("Minutes", minutes.as_str()),
        ])
        .map_err(|e| Status::internal(format!("cannot encode the request: {e}")))?;
        let resource = self
            .api
            .request(
                &self.url(workspace, task_queue, "CumulativeStatistics", &query),
                None,
            )
            .await
            .map_err(|error| status(error, task_queue, queue))?;
        let unreadable =
            |reason: String| Status::unavailable(format!("TaskQueue {task_queue}: {reason}"));
        let accepted = count(&resource, &["reservations_accepted"]).map_err(unreadable)?;
        if accepted == 0 {
            return Ok(None);
        }
        let seconds = count(&resource, &["avg_task_acceptance_time"]).map_err(unreadable)?;
        Ok(Some(Duration::from_secs(u64::from(seconds))))
    }
}

/// The status of a statistics request TaskRouter refused or never
/// answered.
fn status(error: UpdateError, task_queue: &str, queue: &str) -> Status {
    match &error {
        UpdateError::Refused { status: 404, .. } => Status::not_found(format!(
            "TaskRouter has no TaskQueue {task_queue} (task_queues.{queue}): {error}"
        )),
        UpdateError::Refused { status, .. } if *status < 500 && *status != 429 => {
            Status::failed_precondition(format!(
                "reading the statistics of TaskQueue {task_queue}: {error}"
            ))
        }
        _ => Status::unavailable(format!(
            "reading the statistics of TaskQueue {task_queue}: {error}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn real_time_statistics_are_read_and_a_malformed_answer_is_an_error() {
        let resource = json!({
            "total_eligible_workers": 5,
            "total_available_workers": 1,
            "total_tasks": 9,
            "tasks_by_status": {"pending": 3, "reserved": 2, "assigned": 4, "wrapping": 0},
        });
        let now = RealTime::from_resource(&resource).expect("valid");
        assert_eq!(now.waiting(), 5);
        assert_eq!(now.eligible_workers, 5);
        for bad in [
            json!({"total_eligible_workers": 5, "total_available_workers": 1}),
            json!({"total_eligible_workers": -1, "total_available_workers": 1,
                   "tasks_by_status": {"pending": 0, "reserved": 0}}),
            json!({"total_eligible_workers": "5", "total_available_workers": 1,
                   "tasks_by_status": {"pending": 0, "reserved": 0}}),
            json!([]),
        ] {
            assert!(RealTime::from_resource(&bad).is_err(), "{bad}");
        }
    }
}
