//! The contract server's TaskQueue statistics, as TaskRouter publishes
//! them (taskrouter.twilio.com/v1, "REST API: TaskQueue Statistics"):
//!
//! - `GET /v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics`
//!   with the only query parameter `TaskChannel`;
//! - `GET /v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/CumulativeStatistics`
//!   with `TaskChannel`, `Minutes` (1 to 43200: 30 days of history),
//!   `StartDate`, `EndDate`, `SplitByWaitTime`.
//!
//! Basic auth (401, 20003), no body, no other parameter and no parameter
//! twice (400, 20001), a TaskChannel the workspace has (its unique name or
//! a `TC` SID; 400, 20001 otherwise), SIDs `WS`/`WQ` + 32 hex digits and
//! known to the workspace (404, 20404). The figures are what the test set
//! in [`Twilio::task_queues`]; a channel without figures has none of its
//! tasks or workers, as TaskRouter answers zeros.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::*;

/// The task channels of the contract server's workspace (Flex's).
const TASK_CHANNELS: &[&str] = &["default", "voice", "chat", "sms", "video", "email"];

/// One TaskQueue's figures for one task channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStatistics {
    pub eligible_workers: u32,
    pub available_workers: u32,
    pub pending: u32,
    pub reserved: u32,
    pub assigned: u32,
    pub wrapping: u32,
    /// Cumulative, over the window asked for.
    pub reservations_accepted: u32,
    pub avg_task_acceptance_time: u32,
}

/// One statistics request the server answered: the resource's last path
/// segment and its query parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsRequest {
    pub task_queue_sid: String,
    pub resource: &'static str,
    pub query: Vec<(String, String)>,
}

fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The figures of an authenticated, well-formed statistics request of a
/// TaskQueue the workspace has, or TaskRouter's answer to it.
fn checked(
    twilio: &Twilio,
    (workspace, task_queue): &(String, String),
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    allowed: &[&str],
    resource: &'static str,
) -> Result<QueueStatistics, Box<Response>> {
    let refuse = |status, code, message: &str| Box::new(error(status, code, message));
    if !authenticated(headers) {
        return Err(refuse(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
    }
    if !body.is_empty() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            20001,
            "A GET request has no body",
        ));
    }
    let params = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, 20001, "Invalid query encoding"))?;
    for (n, (name, _)) in params.iter().enumerate() {
        if !allowed.contains(&name.as_str()) || params[..n].iter().any(|(seen, _)| seen == name) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                20001,
                &format!("Invalid parameter: {name}"),
            ));
        }
    }
    let value = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let channel = value("TaskChannel").unwrap_or("default");
    if !(TASK_CHANNELS.contains(&channel) || is_sid(channel, "TC")) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            20001,
            &format!("Invalid TaskChannel: {channel}"),
        ));
    }
    if let Some(minutes) = value("Minutes")
        && !minutes
            .parse::<u32>()
            .is_ok_and(|m| (1..=43_200).contains(&m))
    {
        return Err(refuse(StatusCode::BAD_REQUEST, 20001, "Invalid Minutes"));
    }
    let path = format!("/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/{resource}");
    let not_found = || {
        refuse(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource {path} was not found"),
        )
    };
    if workspace != WORKSPACE_SID || !is_sid(task_queue, "WQ") {
        return Err(not_found());
    }
    let task_queues = twilio.task_queues.lock().expect("lock");
    let Some(channels) = task_queues.get(task_queue) else {
        return Err(not_found());
    };
    let figures = channels.get(channel).copied().unwrap_or_default();
    twilio
        .statistics_requests
        .lock()
        .expect("lock")
        .push(StatisticsRequest {
            task_queue_sid: task_queue.clone(),
            resource,
            query: params,
        });
    Ok(figures)
}

/// `GET …/TaskQueues/{TaskQueueSid}/RealTimeStatistics`.
pub async fn real_time_statistics(
    State(twilio): State<Arc<Twilio>>,
    Path(sids): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const RESOURCE: &str = "RealTimeStatistics";
    let figures = match checked(
        &twilio,
        &sids,
        &headers,
        query.as_deref(),
        &body,
        &["TaskChannel"],
        RESOURCE,
    ) {
        Ok(checked) => checked,
        Err(refusal) => return *refusal,
    };
    let (workspace, task_queue) = sids;
    let tasks = figures.pending + figures.reserved + figures.assigned + figures.wrapping;
    (
        StatusCode::OK,
        axum::Json(json!({
            "account_sid": ACCOUNT_SID,
            "workspace_sid": workspace,
            "task_queue_sid": task_queue,
            "total_eligible_workers": figures.eligible_workers,
            "total_available_workers": figures.available_workers,
            "total_tasks": tasks,
            "tasks_by_status": {
                "pending": figures.pending,
                "reserved": figures.reserved,
                "assigned": figures.assigned,
                "wrapping": figures.wrapping,
            },
            "tasks_by_priority": {},
            "longest_task_waiting_age": if figures.pending > 0 { 42 } else { 0 },
            "longest_task_waiting_sid": null,
            "longest_relative_task_age_in_queue": 0,
            "longest_relative_task_sid_in_queue": null,
            "activity_statistics": [
                {"friendly_name": "Available", "workers": figures.available_workers},
            ],
            "url": format!("https://taskrouter.twilio.com/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/{RESOURCE}"),
        })),
    )
        .into_response()
}

/// `GET …/TaskQueues/{TaskQueueSid}/CumulativeStatistics`.
pub async fn cumulative_statistics(
    State(twilio): State<Arc<Twilio>>,
    Path(sids): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const RESOURCE: &str = "CumulativeStatistics";
    let figures = match checked(
        &twilio,
        &sids,
        &headers,
        query.as_deref(),
        &body,
        &[
            "TaskChannel",
            "Minutes",
            "StartDate",
            "EndDate",
            "SplitByWaitTime",
        ],
        RESOURCE,
    ) {
        Ok(checked) => checked,
        Err(refusal) => return *refusal,
    };
    let (workspace, task_queue) = sids;
    let average = figures.avg_task_acceptance_time;
    (
        StatusCode::OK,
        axum::Json(json!({
            "account_sid": ACCOUNT_SID,
            "workspace_sid": workspace,
            "task_queue_sid": task_queue,
            "avg_task_acceptance_time": average,
            "start_time": "2026-12-06T20:00:00Z",
            "end_time": "2026-12-06T20:15:00Z",
            "reservations_created": figures.reservations_accepted,
            "reservations_accepted": figures.reservations_accepted,
            "reservations_rejected": 0,
            "reservations_timed_out": 0,
            "reservations_canceled": 0,
            "reservations_rescinded": 0,
            "tasks_entered": figures.reservations_accepted,
            "tasks_canceled": 0,
            "tasks_completed": 0,
            "tasks_deleted": 0,
            "tasks_moved": 0,
            "split_by_wait_time": null,
            "wait_duration_until_accepted": {"avg": average, "min": 0, "max": average, "total": average * figures.reservations_accepted},
            "wait_duration_until_canceled": {"avg": 0, "min": 0, "max": 0, "total": 0},
            "url": format!("https://taskrouter.twilio.com/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/{RESOURCE}"),
        })),
    )
        .into_response()
}

impl Twilio {
    /// Gives the workspace a TaskQueue with these figures per task channel.
    pub fn task_queue(&self, sid: &str, channels: &[(&str, QueueStatistics)]) {
        self.task_queues.lock().expect("lock").insert(
            sid.to_owned(),
            channels
                .iter()
                .map(|(channel, figures)| ((*channel).to_owned(), *figures))
                .collect::<BTreeMap<_, _>>(),
        );
    }

    pub fn statistics_requests(&self) -> Vec<StatisticsRequest> {
        self.statistics_requests.lock().expect("lock").clone()
    }
}
