//! What the Amazon Connect tests share: the contract server
//! (`tests/contract_server.py`, started as a subprocess on an ephemeral
//! loopback port), the simulated instance it plays, and the connector's
//! configuration for it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use baton_connector_amazon_connect::ConnectConfig;
use baton_connector_amazon_connect::config::{Credentials, QueueConfig};
use baton_connector_sdk::testing;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, StartTransferRequest, StartTransferResponse,
    TransferEventKind,
};
use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use serde_json::{Value, json};

pub const INSTANCE_ID: &str = "4f1b2c3d-5e6f-4a0b-8c9d-0e1f2a3b4c5d";
pub const REGION: &str = "eu-west-2";
pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The simulated instance: queues (one whose agent answers, one nobody
/// staffs, one answered at once), flows, an agent and quick connects.
fn instance(rate: f64, burst: u32) -> Value {
    json!({
        "instance_id": INSTANCE_ID,
        "region": REGION,
        "credentials": [{"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}],
        "rate_per_second": rate,
        "burst": burst,
        "queues": {
            "q-support": {"agent": {"user_id": "u-agent-7", "offer_after_ms": 250, "connect_after_ms": 450},
                          "contacts_ahead": 2, "estimated_wait_time": 45},
            "q-unstaffed": {"contacts_ahead": 3, "estimated_wait_time": 120},
            "q-instant": {"agent": {"user_id": "u-agent-7", "offer_after_ms": 0, "connect_after_ms": 0}},
        },
        "contact_flows": {
            "f-queue-transfer": "QUEUE_TRANSFER",
            "f-agent-transfer": "AGENT_TRANSFER",
            "f-whisper": "AGENT_WHISPER",
        },
        "users": {"u-agent-7": {"offer_after_ms": 100, "connect_after_ms": 200}},
        "quick_connects": {
            "qc-billing": {"name": "Billing", "config": {"QuickConnectType": "QUEUE",
                "QueueConfig": {"QueueId": "q-support", "ContactFlowId": "f-queue-transfer"}}},
            "qc-alice": {"name": "Alice", "config": {"QuickConnectType": "USER",
                "UserConfig": {"UserId": "u-agent-7", "ContactFlowId": "f-agent-transfer"}}},
            "qc-phone": {"name": "Outside line", "config": {"QuickConnectType": "PHONE_NUMBER",
                "PhoneConfig": {"PhoneNumber": "+14155550100"}}},
        },
    })
}

/// Queue name → where it goes in the instance.
pub fn queues() -> BTreeMap<String, QueueConfig> {
    let direct = |queue: &str| QueueConfig {
        queue_id: Some(queue.into()),
        contact_flow_id: Some("f-queue-transfer".into()),
        quick_connect_id: None,
    };
    let quick = |id: &str| QueueConfig {
        quick_connect_id: Some(id.into()),
        ..Default::default()
    };
    BTreeMap::from([
        ("support".into(), direct("q-support")),
        ("waiting".into(), direct("q-unstaffed")),
        ("instant".into(), direct("q-instant")),
        ("missing".into(), direct("q-does-not-exist")),
        ("billing".into(), quick("qc-billing")),
        ("alice".into(), quick("qc-alice")),
        ("outside".into(), quick("qc-phone")),
    ])
}

/// The contract server, killed when dropped.
pub struct ContractServer {
    pub addr: SocketAddr,
    service: Service,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl ContractServer {
    /// Starts it with the default quota: 2 requests per second per
    /// operation, a burst of 5.
    pub async fn start() -> Self {
        Self::start_with_rate(2.0, 5).await
    }

    pub async fn start_with_rate(rate: f64, burst: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("instance.json");
        std::fs::write(&config, instance(rate, burst).to_string()).expect("writes");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract_server.py");
        let service = Service::start_program(
            "connect-contract",
            Path::new("python3"),
            &[
                script.to_str().expect("path"),
                "--config",
                config.to_str().expect("path"),
            ],
            &[],
            dir.path(),
        )
        .await
        .expect("the contract server starts (python3 with botocore: pip install botocore)");
        Self {
            addr: service.addr("http"),
            service,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn logs(&self) -> String {
        self.service.logs()
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .expect("the contract server answers")
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .expect("JSON")
    }

    /// A contact in the AI's flow.
    pub async fn create_contact(&self, id: &str, channel: &str) -> Value {
        self.http
            .post(format!("{}/_contract/contacts", self.url()))
            .header("content-type", "application/json")
            .body(json!({"id": id, "channel": channel}).to_string())
            .send()
            .await
            .expect("answers")
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .expect("JSON")
    }

    pub async fn contact(&self, id: &str) -> Value {
        self.get(&format!("/_contract/contacts/{id}")).await
    }

    pub async fn contacts(&self) -> Vec<Value> {
        self.get("/_contract/contacts")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The customer hangs up.
    pub async fn disconnect(&self, id: &str) {
        self.http
            .post(format!("{}/_contract/contacts/{id}/disconnect", self.url()))
            .send()
            .await
            .expect("answers");
    }

    /// Sets a queue's real-time figures per channel, as GetCurrentMetricData
    /// reports them: `{"VOICE": {"AGENTS_ONLINE": 4, ...}}`.
    pub async fn set_queue_metrics(&self, queue_id: &str, metrics: Value) {
        let response = self
            .http
            .post(format!(
                "{}/_contract/queues/{queue_id}/metrics",
                self.url()
            ))
            .header("content-type", "application/json")
            .body(metrics.to_string())
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200, "{queue_id}: {metrics}");
    }

    /// Every request: operation, status, error type, parameters.
    pub async fn log(&self) -> Vec<Value> {
        self.get("/_contract/log")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn stats(&self) -> Value {
        self.get("/_contract/stats").await
    }

    /// Every request the connector made was accepted: none refused, none
    /// unknown to the model, every one signed (the server checks all of it).
    pub async fn assert_all_accepted(&self) {
        let refused = self.refused().await;
        assert!(refused.is_empty(), "refused requests: {refused:#?}");
    }

    /// The requests the server refused, as `operation status error: message`.
    pub async fn refused(&self) -> Vec<String> {
        self.log()
            .await
            .iter()
            .filter(|e| e["status"].as_u64() != Some(200))
            .map(|e| {
                format!(
                    "{} {} {}: {}",
                    e["operation"], e["status"], e["error"], e["message"]
                )
            })
            .collect()
    }
}

/// The connector's configuration for the contract server.
pub fn config(server: &ContractServer) -> ConnectConfig {
    let mut config = ConnectConfig {
        region: REGION.into(),
        endpoint: Some(server.url()),
        instance_id: INSTANCE_ID.into(),
        credentials: Credentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
            session_token: None,
        },
        queues: queues(),
        poll_interval: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        store: baton_connector_sdk::config::StoreConfig::at(Some(data_dir())),
        ..Default::default()
    };
    config.server.grpc_listen = "127.0.0.1:0".parse().expect("addr");
    config
}

/// A fresh directory for one connector's transfer journal, under Cargo's
/// scratch directory for integration tests (never the source tree, never
/// shared by two connectors).
pub fn data_dir() -> std::path::PathBuf {
    testing::scratch_dir(env!("CARGO_TARGET_TMPDIR"), env!("CARGO_PKG_NAME"))
}

/// The same as a TOML file for the binary.
pub fn config_toml(server: &ContractServer, rate: f64, burst: u32) -> String {
    let mut text = format!(
        "region = \"{REGION}\"\nendpoint = \"{}\"\ninstance_id = \"{INSTANCE_ID}\"\npoll_interval = \"100ms\"\nrate_per_second = {rate:?}\nburst = {burst}\n\n[server]\ngrpc_listen = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\n\n[store]\ndata_dir = {data:?}\n\n[credentials]\naccess_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key = \"{SECRET_ACCESS_KEY}\"\n",
        server.url(),
        data = data_dir().display().to_string(),
    );
    for (name, queue) in queues() {
        text.push_str(&format!("\n[queues.{name}]\n"));
        for (key, value) in [
            ("queue_id", &queue.queue_id),
            ("contact_flow_id", &queue.contact_flow_id),
            ("quick_connect_id", &queue.quick_connect_id),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("{key} = \"{value}\"\n"));
            }
        }
    }
    text
}

/// Starts the connector binary on `server` (rate 2/s, burst 5), its
/// configuration and journal in `dir`.
pub async fn start_connector_binary(server: &ContractServer, dir: &Path) -> Service {
    let connector_config = dir.join("amazon-connect.toml");
    std::fs::write(&connector_config, config_toml(server, 2.0, 5)).expect("writes");
    Service::start(
        "baton-connector-amazon-connect",
        &["--config", connector_config.to_str().expect("path")],
        dir,
    )
    .await
    .expect("the connector starts (build it first)")
}

/// The sample escalation `request_id` to `target`, from the live chat
/// contact `contact`.
pub fn sample_on_contact(
    request_id: &str,
    contact: &str,
    target: pb::target::Kind,
) -> CreateHandoffRequest {
    let mut request = baton_tests::sample_request(request_id, target);
    request.conversation = Some(pb::Conversation {
        channel: pb::Channel::Chat as i32,
        language: "en-US".into(),
        call: Some(pb::CallReference {
            platform_contact_id: contact.into(),
            caller_number: testing::CALLER.into(),
            ..Default::default()
        }),
    });
    request
}

/// Serves the connector in this process; its gRPC address.
pub async fn start_connector(config: ConnectConfig) -> SocketAddr {
    let bound = baton_connector_amazon_connect::bind(config)
        .await
        .expect("binds");
    let addr = bound.addr;
    tokio::spawn(bound.serve(std::future::pending()));
    addr
}

pub const TASK_ATTRIBUTES: &str = r#"{"token":"signed.token","intent":"billing.dispute","reason":"explicit_request","priority":3,"summary":"Charged twice in March","entities":{"issue_type":"double charge"},"transcript":[{"speaker":"customer","text":"I want a person"},{"speaker":"ai","text":"Connecting you"}]}"#;

pub fn request(handoff_id: &str, contact_id: &str, queue: &str) -> StartTransferRequest {
    let envelope = ContextEnvelope {
        reference: Some(testing::context_reference(
            "https://baton.example",
            handoff_id,
            "signed.token",
        )),
        conversation: Some(testing::platform_call(contact_id)),
        payloads: vec![ContextPayload {
            mechanism: ContextMechanism::TaskAttributes as i32,
            content: TASK_ATTRIBUTES.into(),
            omitted_fields: vec!["entities.account_number".into()],
        }],
        ..Default::default()
    };
    testing::transfer_request(handoff_id, testing::queue(queue, &[]), envelope)
}

/// Every event of one transfer, to its terminal one.
pub async fn transfer(
    grpc: SocketAddr,
    request: StartTransferRequest,
) -> Vec<StartTransferResponse> {
    baton_tests::transfer(grpc, request, Duration::from_secs(60)).await
}

/// Whether an event is the connector waiting for its own rate limit
/// (QUEUED with a "rate limit" detail) rather than news from Connect.
pub fn is_pacing(event: &StartTransferResponse) -> bool {
    event.kind == TransferEventKind::Queued as i32 && event.detail.contains("rate limit")
}

/// The kinds of the events that report Connect's progress: pacing waits
/// left out (how many there are depends on what ran before), and a run of
/// queue updates counted once (how many polls see the contact waiting
/// depends on when they fall against the agent's offer: a poll between the
/// offer and the contact's next read reports one contact fewer ahead).
pub fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    let mut kinds: Vec<TransferEventKind> = events
        .iter()
        .filter(|e| !is_pacing(e))
        .filter_map(|e| TransferEventKind::try_from(e.kind).ok())
        .collect();
    kinds.dedup_by(|next, previous| {
        *next == TransferEventKind::Queued && *previous == TransferEventKind::Queued
    });
    kinds
}

/// A contact id the server makes on first sight, of `channel`.
pub fn contact_id(channel: &str, n: u32) -> String {
    format!("{}-{:032x}", channel.to_lowercase(), n)
}
