//! A connector that plays scripted transfer events. The control service's
//! integration tests use it to make targets busy, slow or failing on
//! purpose, and `baton dev` uses it as a stand-in contact center until a
//! real one is configured. Every transfer it receives can be recorded as a
//! JSON line, so tests can check exactly what the control service sent.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use baton_connector_sdk::config::{ConnectorDefaults, ServerConfig, StoreConfig, loopback};
use baton_connector_sdk::{
    BoundConnector, Connector, ConnectorInfo, ContextMechanism, FailureReason, NoFlags,
    RunnableConnector, ServeOptions, TargetKind, Transfer, TransferEvents, TransferMode,
    TransferTarget,
};
use serde::Deserialize;

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Queued {
        position: u32,
        wait: Duration,
    },
    Offered,
    Ringing,
    Answered,
    ContextDelivered,
    Connected,
    Completed,
    /// Completed, with the human's wrap-up.
    WrapUp {
        disposition: String,
        notes: String,
    },
    Failed(FailureReason),
    Cancelled,
    Sleep(Duration),
    /// Wait until cancelled or the deadline passes.
    Hold,
}

impl Step {
    /// Parses `queued:POSITION:WAIT`, `offered`, `ringing`, `answered`,
    /// `context_delivered`, `connected`, `completed`,
    /// `wrap_up:DISPOSITION:NOTES`, `failed:REASON`,
    /// `cancelled`, `sleep:DURATION` or `hold`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let head = parts.next().unwrap_or_default();
        let arg = parts.next();
        let duration = |arg: Option<&str>| {
            humantime_serde::re::humantime::parse_duration(arg.unwrap_or("0s"))
                .map_err(|e| format!("{text:?}: {e}"))
        };
        Ok(match head {
            "queued" => Step::Queued {
                position: arg
                    .unwrap_or("1")
                    .parse()
                    .map_err(|_| format!("{text:?}: bad position"))?,
                wait: duration(parts.next())?,
            },
            "offered" => Step::Offered,
            "ringing" => Step::Ringing,
            "answered" => Step::Answered,
            "context_delivered" => Step::ContextDelivered,
            "connected" => Step::Connected,
            "completed" => Step::Completed,
            "wrap_up" => Step::WrapUp {
                disposition: arg.unwrap_or_default().to_owned(),
                notes: parts.collect::<Vec<_>>().join(":"),
            },
            "cancelled" => Step::Cancelled,
            "hold" => Step::Hold,
            "sleep" => Step::Sleep(duration(arg)?),
            "failed" => Step::Failed(match arg.unwrap_or("unreachable") {
                "busy" => FailureReason::Busy,
                "no_answer" => FailureReason::NoAnswer,
                "rejected" => FailureReason::Rejected,
                "unreachable" => FailureReason::Unreachable,
                "no_agents" => FailureReason::NoAgents,
                "wait_too_long" => FailureReason::WaitTooLong,
                "connector_error" => FailureReason::ConnectorError,
                other => return Err(format!("{text:?}: unknown failure reason {other:?}")),
            }),
            other => return Err(format!("unknown step {other:?}")),
        })
    }
}

/// The script connector's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptConfig {
    /// The connector's name in GetConnectorInfo.
    pub name: String,
    /// Listeners and the drain (the SDK's shared section). Default gRPC
    /// address `127.0.0.1:50061`; `drain_timeout` defaults to `0s`: the
    /// streams end at once with UNAVAILABLE at SIGTERM, so that the
    /// control service re-attaches.
    pub server: ServerConfig<ScriptConfig>,
    /// `data_dir`: the SDK's transfer journal (`transfers.sqlite3`); with
    /// it, a restarted script connector replays the transfers that ended
    /// and reports the ones it was running as FAILED (INTERRUPTED) when
    /// re-attached, as a real connector would. Default: none, so that a
    /// restarted script connector runs a re-attached transfer's script
    /// again, as the tests that restart it expect.
    pub store: StoreConfig<ScriptConfig>,
    /// The script for targets without one of their own.
    pub default_script: Vec<String>,
    /// Scripts by target: a queue name, an E.164 number or a SIP URI.
    pub targets: BTreeMap<String, Vec<String>>,
    /// When set, every transfer received is appended here as a JSON line.
    pub record_file: Option<PathBuf>,
    /// Logs, traces and metrics.
    pub telemetry: baton_service_kit::telemetry::TelemetryConfig,
    /// TLS of the gRPC listener (`cert_file`, `key_file`, and
    /// `client_ca_file` to require client certificates: mTLS with the
    /// control service). Plain text when absent.
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
}

impl ConnectorDefaults for ScriptConfig {
    const GRPC_LISTEN: SocketAddr = loopback(50061);
    const DRAIN_TIMEOUT: Duration = Duration::ZERO;
}

impl Default for ScriptConfig {
    fn default() -> Self {
        Self {
            name: "script".into(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            default_script: [
                "ringing",
                "sleep:300ms",
                "answered",
                "context_delivered",
                "connected",
                "completed",
            ]
            .map(String::from)
            .to_vec(),
            targets: BTreeMap::new(),
            record_file: None,
            telemetry: Default::default(),
            tls: None,
        }
    }
}

impl RunnableConnector for ScriptConfig {
    const BINARY: &'static str = "baton-connector-script";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ENV_PREFIX: &'static str = "BATON_SCRIPT";
    const ABOUT: &'static str = "A Baton connector that answers every transfer with a scripted \
        sequence of events (queued, ringing, connected, busy…), for tests and demos.";
    type Flags = NoFlags;
    type Bound = BoundConnector<ScriptConnector>;

    baton_connector_sdk::shared_sections!();

    /// Parses every script (the record file is opened by `bind`).
    fn validate(&self) -> Result<(), String> {
        parse_script("default_script", &self.default_script)?;
        parse_targets(&self.targets).map(|_| ())
    }

    async fn bind(self) -> anyhow::Result<Self::Bound> {
        let connector = ScriptConnector::new(&self).map_err(anyhow::Error::msg)?;
        let options = ServeOptions::configured(&self.server, self.tls.as_ref(), &self.store);
        baton_connector_sdk::bind(connector, options).await
    }
}

#[derive(Debug)]
pub struct ScriptConnector {
    name: String,
    default_script: Vec<Step>,
    targets: BTreeMap<String, Vec<Step>>,
    record: Option<Mutex<std::fs::File>>,
}

fn parse_script(key: &str, steps: &[String]) -> Result<Vec<Step>, String> {
    steps
        .iter()
        .map(|s| Step::parse(s).map_err(|e| format!("{key}: {e}")))
        .collect()
}

fn parse_targets(
    targets: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<Step>>, String> {
    targets
        .iter()
        .map(|(target, steps)| {
            parse_script(&format!("targets.{target:?}"), steps).map(|steps| (target.clone(), steps))
        })
        .collect()
}

impl ScriptConnector {
    pub fn new(config: &ScriptConfig) -> Result<Self, String> {
        let targets = parse_targets(&config.targets)?;
        let record = match &config.record_file {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("record_file: {e}"))?,
            )),
            None => None,
        };
        Ok(Self {
            name: config.name.clone(),
            default_script: parse_script("default_script", &config.default_script)?,
            targets,
            record,
        })
    }

    fn record(&self, transfer: &Transfer) {
        let Some(file) = &self.record else { return };
        let reference = transfer.envelope.reference.clone().unwrap_or_default();
        let line = serde_json::json!({
            "tenant": transfer.tenant,
            "handoff_id": transfer.handoff_id,
            "attempt": transfer.attempt,
            "target": target_key(&transfer.target),
            "mode": transfer.mode.as_str_name(),
            "token": reference.token,
            "screen_pop_url": reference.screen_pop_url,
            "summary": transfer.envelope.context.as_ref().map(|c| c.summary.clone()),
            "omitted_fields": transfer.envelope.omitted_fields,
            "payloads": transfer.envelope.payloads.iter().map(|p| serde_json::json!({
                "mechanism": p.mechanism().as_str_name(),
                "content": p.content,
            })).collect::<Vec<_>>(),
        });
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(file, "{line}");
    }
}

fn target_key(target: &TransferTarget) -> String {
    match target {
        TransferTarget::Queue { name, .. } => name.clone(),
        TransferTarget::PhoneNumber(number) => number.clone(),
        TransferTarget::SipUri(uri) => uri.clone(),
    }
}

impl Connector for ScriptConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new(self.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([
                TargetKind::Queue,
                TargetKind::PhoneNumber,
                TargetKind::SipUri,
            ])
            .transfer_modes([
                TransferMode::Warm,
                TransferMode::Blind,
                TransferMode::Attended,
            ])
            .context(ContextMechanism::Structured, 64 * 1024)
            .context(ContextMechanism::SipUserToUser, 128)
            .context(ContextMechanism::SipHeaders, 1024)
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        self.record(&transfer);
        let script = self
            .targets
            .get(&target_key(&transfer.target))
            .unwrap_or(&self.default_script);
        for step in script {
            match step {
                Step::Queued { position, wait } => events.queued(*position, *wait).await,
                Step::Offered => events.offered("offered to a scripted agent").await,
                Step::Ringing => events.ringing("").await,
                Step::Answered => events.answered("scripted agent").await,
                Step::ContextDelivered => events.context_delivered("").await,
                Step::Connected => events.connected("").await,
                Step::Completed => events.completed("").await,
                Step::WrapUp { disposition, notes } => {
                    let wrap_up = baton_connector_sdk::WrapUp {
                        disposition: disposition.clone(),
                        notes: notes.clone(),
                        ..Default::default()
                    };
                    events.completed_with_wrap_up("wrapped up", wrap_up).await
                }
                Step::Failed(reason) => events.failed(*reason, "scripted failure").await,
                Step::Cancelled => events.cancelled("scripted hang-up").await,
                Step::Sleep(duration) => tokio::time::sleep(*duration).await,
                Step::Hold => std::future::pending::<()>().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse() {
        assert_eq!(
            Step::parse("queued:3:45s"),
            Ok(Step::Queued {
                position: 3,
                wait: Duration::from_secs(45)
            })
        );
        assert_eq!(
            Step::parse("failed:busy"),
            Ok(Step::Failed(FailureReason::Busy))
        );
        assert_eq!(
            Step::parse("sleep:200ms"),
            Ok(Step::Sleep(Duration::from_millis(200)))
        );
        assert!(Step::parse("failed:exploded").is_err());
        assert!(Step::parse("dance").is_err());
    }
}
