//! Several control-service replicas sharing one PostgreSQL server (a real
//! throwaway one), wired to one scripted connector that records every
//! transfer it starts: the harness of the multi-replica and database
//! fault-injection tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_tests::Service;
use baton_tests::postgres::Postgres;
use tempfile::TempDir;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use super::CONTROL_SERVER;

/// Every transfer rings, waits (so that it is in flight when a replica or
/// the database goes), then connects and completes; to queue `hold`, it
/// rings until cancelled.
const SCRIPT_CONFIG: &str = r#"
name = "script"
listen = "127.0.0.1:0"
default_script = ["ringing", "sleep:1500ms", "answered", "context_delivered", "connected", "completed"]

[targets]
hold = ["ringing", "hold"]
"#;

/// How long a replica's lease lives: a dead replica's handoffs are taken
/// over after at most this (plus half of it, the orphan scan interval).
pub const LEASE_TTL: &str = "1500ms";

pub struct Cluster {
    pub dir: TempDir,
    pub postgres: Postgres,
    pub database_url: String,
    pub connector: Service,
    /// Replicas by index; `None` once crashed.
    pub replicas: Vec<Option<Service>>,
}

impl Cluster {
    /// PostgreSQL, the connector and `replicas` control replicas.
    pub async fn start(replicas: usize) -> Cluster {
        let postgres = Postgres::start().expect("start PostgreSQL (apt-get install postgresql)");
        let database_url = postgres.create_database().expect("create a database");
        let dir = tempfile::tempdir().expect("tempdir");
        let connector = super::start_script_connector(dir.path(), SCRIPT_CONFIG, &[]).await;
        let mut cluster = Cluster {
            dir,
            postgres,
            database_url,
            connector,
            replicas: Vec::new(),
        };
        for _ in 0..replicas {
            cluster.start_replica().await;
        }
        cluster
    }

    fn replica_config(&self, index: usize) -> PathBuf {
        let path = self.dir.path().join(format!("control-{index}.toml"));
        let config = format!(
            r#"{CONTROL_SERVER}
[store]
backend = "postgres"
url = "{url}"
data_dir = {data:?}
token_key_file = {key:?}
max_connections = 8
connect_timeout = "1s"
lease_ttl = "{LEASE_TTL}"

[connectors.script]
endpoint = "{endpoint}"

[default_connectors]
queue = "script"
phone_number = "script"
sip_uri = "script"
"#,
            url = self.database_url,
            data = self
                .dir
                .path()
                .join(format!("control-{index}"))
                .display()
                .to_string(),
            key = self
                .dir
                .path()
                .join("context-token.key")
                .display()
                .to_string(),
            endpoint = self.connector.endpoint("grpc"),
        );
        std::fs::write(&path, config).expect("write control config");
        path
    }

    /// Starts one more replica; returns its index.
    pub async fn start_replica(&mut self) -> usize {
        let index = self.replicas.len();
        let config = self.replica_config(index);
        let replica = Service::start(
            "baton-control",
            &["--config", config.to_str().expect("path")],
            self.dir.path(),
        )
        .await
        .expect("start a control replica");
        self.replicas.push(Some(replica));
        index
    }

    pub fn replica(&self, index: usize) -> &Service {
        self.replicas[index].as_ref().expect("replica running")
    }

    pub async fn client(&self, index: usize) -> HandoffServiceClient<Channel> {
        HandoffServiceClient::connect(self.replica(index).endpoint("grpc"))
            .await
            .expect("connect to a replica")
    }

    /// `kill -9` of a replica.
    pub async fn crash(&mut self, index: usize) {
        self.replicas[index]
            .take()
            .expect("replica running")
            .crash()
            .await
            .expect("crash");
    }

    /// StartTransfer calls the connector ran, by handoff id.
    pub fn transfers_by_handoff(&self) -> BTreeMap<String, usize> {
        let path = self.dir.path().join("transfers.jsonl");
        let mut counts = BTreeMap::new();
        for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(id) = value["handoff_id"].as_str()
            {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    }

    /// Every replica's log, for failure messages.
    pub fn logs(&self) -> String {
        self.replicas
            .iter()
            .flatten()
            .map(|r| r.logs())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }
}

/// Watches a handoff from the start until a terminal event, within
/// `limit`; `None` when it did not end in time. A stream that breaks (a
/// replica or the database unavailable) is watched again from the last
/// event seen, as a runtime does.
pub async fn watch_to_end(
    mut client: HandoffServiceClient<Channel>,
    id: String,
    limit: Duration,
) -> Option<Vec<HandoffEvent>> {
    let mut events: Vec<HandoffEvent> = Vec::new();
    let watching = async {
        for _ in 0..50 {
            let after_sequence = events.last().map_or(0, |e| e.sequence);
            if let Ok(response) = client
                .watch_handoff(WatchHandoffRequest {
                    handoff_id: id.clone(),
                    after_sequence,
                })
                .await
            {
                let mut stream = response.into_inner();
                while let Some(Ok(response)) = stream.next().await {
                    let Some(event) = response.event else {
                        continue;
                    };
                    let ended = matches!(
                        event.kind(),
                        HandoffEventKind::Completed
                            | HandoffEventKind::Failed
                            | HandoffEventKind::Cancelled
                    );
                    events.push(event);
                    if ended {
                        return true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    let ended = tokio::time::timeout(limit, watching).await.unwrap_or(false);
    ended.then_some(events)
}

/// The figures of a fault-injection run, printed into the test output.
#[derive(Debug, Default)]
pub struct Figures {
    pub sent: usize,
    pub acknowledged: usize,
    pub completed: usize,
    pub lost: usize,
    pub duplicated: usize,
}

impl Figures {
    pub fn print(&self, scenario: &str) {
        println!(
            "{scenario}: handoffs sent {}, acknowledged {}, completed {}, lost {}, duplicated {}",
            self.sent, self.acknowledged, self.completed, self.lost, self.duplicated
        );
    }
}
