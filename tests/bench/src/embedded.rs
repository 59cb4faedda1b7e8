//! The embedded queue with its agent desktop, as the queue scenarios
//! (screen pop, queue rate, memory, restart) start it in this process: one
//! queue `support` of the tenant `default` (the control service's without
//! credentials), bench agents with the skill `support`, and the control
//! service routing queue targets to it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use baton_connector_queue::QueueConfig;
use baton_connector_queue::domain::QueueSpec;
use baton_proto::connector::v1::GetAvailabilityRequest;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::types::v1 as pb;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::api::{control_config_with, serve_control};

/// Every bench agent's password.
pub const PASSWORD: &str = "bench-pw";
/// The queue every handoff of the queue scenarios goes to.
pub const QUEUE: &str = "support";
/// The most handoffs the control service dispatches at once in the queue
/// scenarios: room for the memory scenario's 100,000 waiting (the
/// default, 10,000 per replica, answers RESOURCE_EXHAUSTED beyond).
pub const MAX_IN_FLIGHT: usize = 200_000;

/// The embedded queue and the control service, both serving.
pub struct QueueStack {
    /// The control service's gRPC address.
    pub control: SocketAddr,
    /// The agent desktop: `http://{desktop}/`.
    pub desktop: SocketAddr,
    /// The queue's ConnectorService address.
    pub queue: SocketAddr,
}

/// The bench queue's configuration, its store under `dir/queue` and its
/// accounts in `dir/desk-accounts.toml`: no wait limit nor callback offer
/// a bench could reach (a benchmark's burst is not a customer's wait),
/// offers waiting five minutes for an answer.
pub fn queue_config(dir: &Path) -> QueueConfig {
    let mut config = QueueConfig::ephemeral(dir.join("queue"));
    config.offer_timeout = Duration::from_secs(300);
    config.initial_handle_time = Duration::from_secs(1);
    config.desk.accounts_file = Some(dir.join("desk-accounts.toml"));
    let mut support = QueueSpec::new(QUEUE);
    support.skills = vec![QUEUE.into()];
    support.max_wait = Duration::from_secs(365 * 24 * 3600);
    support.callback_threshold = None;
    config.queues = vec![support];
    config
}

/// Adds an agent account (tenant `default`, skill `support`, password
/// [`PASSWORD`]) for each name to the configuration's accounts file.
pub fn add_agents(config: &QueueConfig, names: &[String]) -> anyhow::Result<()> {
    let file = config
        .desk
        .accounts_file
        .as_deref()
        .context("the bench queue has an accounts file")?;
    for name in names {
        baton_tests::desk::add_support_agent(file, name, PASSWORD)?;
    }
    Ok(())
}

/// Binds the queue on `config` and serves it until `stop`: its gRPC and
/// desktop addresses, and the task serving it (ends once it has drained).
pub async fn serve_queue(
    config: QueueConfig,
    stop: &CancellationToken,
) -> anyhow::Result<(SocketAddr, SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let queue = baton_connector_queue::bind(config).await?;
    let (grpc, http) = (queue.grpc_addr, queue.http_addr);
    let serving = tokio::spawn(queue.serve(stop.clone().cancelled_owned()));
    Ok((grpc, http, serving))
}

/// The queue (see [`queue_config`]) with an account for each of `agents`,
/// and the control service routing queue targets to it, in this process
/// until `stop`.
pub async fn start_stack(
    dir: &Path,
    stop: &CancellationToken,
    agents: &[String],
) -> anyhow::Result<QueueStack> {
    let config = queue_config(dir);
    add_agents(&config, agents)?;
    let (queue, desktop, _) = serve_queue(config, stop).await?;
    let control = start_control(dir, queue, stop).await?;
    Ok(QueueStack {
        control,
        desktop,
        queue,
    })
}

/// The control service (store under `dir/control`) routing queue targets
/// to the queue at `queue`, until `stop`; its gRPC address.
pub async fn start_control(
    dir: &Path,
    queue: SocketAddr,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let mut config = control_config_with(&dir.join("control"), "queue", queue)?;
    config.default_connectors.queue = Some("queue".into());
    config.dispatch.max_in_flight = MAX_IN_FLIGHT;
    serve_control(config, stop).await
}

/// `count` agent names, `agent-0`…
pub fn agent_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("agent-{i}")).collect()
}

/// The queue's own count of contacts waiting in `support` (neither
/// offered nor held), from its GetAvailability.
pub async fn waiting(queue: &mut ConnectorServiceClient<Channel>) -> anyhow::Result<u32> {
    let availability = queue
        .get_availability(GetAvailabilityRequest {
            target: Some(pb::Target {
                kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                    name: QUEUE.into(),
                    skills: vec![],
                })),
            }),
            tenant: "default".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .availability
        .context("GetAvailability answered no availability")?;
    availability
        .contacts_waiting
        .context("the queue reports no waiting count")
}
