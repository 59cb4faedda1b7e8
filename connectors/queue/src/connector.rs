//! The queue as a Baton connector: each transfer becomes a contact in the
//! queue, and the contact's progress becomes transfer events.

use std::sync::Arc;
use std::time::Duration;

use baton_connector_sdk::{
    Connector, ConnectorInfo, ContextMechanism, FailureReason, TargetKind, Transfer,
    TransferEvents, TransferMode, TransferTarget,
};

use crate::desk::{Desk, priority_of};
use crate::domain::{NewContact, Phase, Refusal};

/// The connector side of the queue.
#[derive(Debug, Clone)]
pub struct QueueConnector {
    name: String,
    max_context_bytes: u32,
    desk: Arc<Desk>,
}

impl QueueConnector {
    pub fn new(name: &str, max_context_bytes: u32, desk: Arc<Desk>) -> Self {
        Self {
            name: name.to_owned(),
            max_context_bytes,
            desk,
        }
    }
}

fn failure_reason(refusal: Refusal) -> FailureReason {
    match refusal {
        Refusal::NoAgents => FailureReason::NoAgents,
        Refusal::WaitTooLong => FailureReason::WaitTooLong,
        Refusal::NoAnswer => FailureReason::NoAnswer,
        Refusal::Rejected => FailureReason::Rejected,
        Refusal::UnknownQueue => FailureReason::Unsupported,
    }
}

fn refusal_detail(refusal: Refusal, queue: &str) -> String {
    match refusal {
        Refusal::NoAgents => format!("no agent with the skills of queue {queue:?} is signed in"),
        Refusal::WaitTooLong => {
            format!("the estimated wait in queue {queue:?} is beyond its maximum")
        }
        Refusal::NoAnswer => "no agent accepted the offer in time".into(),
        Refusal::Rejected => "every agent declined the offer".into(),
        Refusal::UnknownQueue => format!("no queue named {queue:?}"),
    }
}

/// What was last reported, so that only changes become events.
#[derive(Debug, PartialEq, Eq)]
enum Reported {
    Nothing,
    Queued {
        position: u32,
        wait_seconds: u64,
        callback: bool,
        callback_chosen: bool,
    },
    Offered(String),
    Connected,
}

impl Connector for QueueConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new(self.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([TargetKind::Queue])
            // The queue treats the three modes alike: the agent accepts in
            // the desktop before the customer is connected, which is what
            // a warm or attended transfer needs and more than blind needs.
            .transfer_modes([
                TransferMode::Warm,
                TransferMode::Blind,
                TransferMode::Attended,
            ])
            .context(ContextMechanism::Structured, self.max_context_bytes)
            .context(ContextMechanism::ScreenPopUrl, 0)
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        let TransferTarget::Queue { name, skills } = &transfer.target else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "the queue connector serves queue targets only",
                )
                .await;
            return;
        };
        let mut changes = self.desk.subscribe();
        let new = NewContact {
            handoff_id: transfer.handoff_id.clone(),
            attempt: transfer.attempt,
            queue: name.clone(),
            skills: skills.clone(),
            priority: priority_of(transfer.envelope.context.as_ref()),
        };
        if let Err(refusal) = self.desk.enqueue(new, transfer.envelope.clone()) {
            events
                .failed(failure_reason(refusal), &refusal_detail(refusal, name))
                .await;
            return;
        }
        let mut reported = Reported::Nothing;
        loop {
            let Some(status) = self.desk.contact_status(&transfer.handoff_id) else {
                events.cancelled("the contact left the queue").await;
                return;
            };
            let agent_name = status.agent_name;
            match status.phase {
                Phase::Waiting => {
                    if let Some(standing) = status.standing {
                        let now = Reported::Queued {
                            position: standing.position,
                            wait_seconds: standing.estimated_wait.as_secs(),
                            callback: standing.callback_offered,
                            callback_chosen: status.callback,
                        };
                        if now != reported {
                            let detail = if status.callback {
                                "callback scheduled: an agent will call the customer back; the conversation may end"
                            } else if standing.callback_offered {
                                "callback offered: the estimated wait is long; the customer may choose to be called back"
                            } else {
                                ""
                            };
                            events
                                .queued_with_detail(
                                    standing.position,
                                    Duration::from_secs(standing.estimated_wait.as_secs()),
                                    detail,
                                )
                                .await;
                            reported = now;
                        }
                    }
                }
                Phase::Offered { agent, .. } => {
                    let now = Reported::Offered(agent);
                    if now != reported {
                        events.offered(&format!("offered to {agent_name}")).await;
                        reported = now;
                    }
                }
                Phase::Connected { .. } => {
                    if reported != Reported::Connected {
                        events.answered(&format!("accepted by {agent_name}")).await;
                        events
                            .context_delivered("screen pop shown in the agent desktop")
                            .await;
                        // The voice leg to the agent's contact address is
                        // the SIP connector's job; the desktop shows the
                        // address. Chat needs nothing more.
                        events
                            .connected(&format!("connected to {agent_name}"))
                            .await;
                        reported = Reported::Connected;
                    }
                }
                Phase::Completed { disposition, .. } => {
                    if reported != Reported::Connected {
                        // Accepted and wrapped up between two wake-ups.
                        events.answered(&format!("accepted by {agent_name}")).await;
                        events
                            .connected(&format!("connected to {agent_name}"))
                            .await;
                    }
                    events
                        .completed(&format!("wrapped up: {disposition}"))
                        .await;
                    self.desk.remove(&transfer.handoff_id);
                    return;
                }
                Phase::Failed { refusal, detail } => {
                    events.failed(failure_reason(refusal), &detail).await;
                    self.desk.remove(&transfer.handoff_id);
                    return;
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    async fn cancel(&self, transfer: &Transfer) {
        // Withdraws a waiting contact or an offer (the desktop updates);
        // a callback stays queued, as the customer was promised.
        self.desk.release(&transfer.handoff_id);
    }
}
