//! `baton handoff …`: a gRPC client of HandoffService for people (readable
//! output, a live view for `watch`) and scripts (`--json`, exit codes).

use std::path::PathBuf;
use std::time::Duration;

use baton_proto::bearer::BearerCredential;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_service_kit::tls::ClientTlsFiles;
use serde_json::{Value, json};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::exit;

mod chat;
mod update;

#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The gRPC endpoint: the control service's (or, for `baton health`,
    /// any Baton service's).
    #[arg(
        long,
        env = "BATON_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    endpoint: String,
    /// The API key (or JWT) to call with; `baton dev` prints one.
    #[arg(long, env = "BATON_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// PEM file with the CA that signs the control service's certificate;
    /// needed for an https:// endpoint (`baton dev --tls` prints it).
    #[arg(long, env = "BATON_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// PEM file with a client certificate, for a control service that
    /// requires one (mTLS); goes with --key-file.
    #[arg(long, env = "BATON_CERT_FILE", global = true, requires = "key_file")]
    cert_file: Option<PathBuf>,
    /// PEM file with the client certificate's private key.
    #[arg(long, env = "BATON_KEY_FILE", global = true, requires = "cert_file")]
    key_file: Option<PathBuf>,
    /// The name to verify the server's certificate against, when it is not
    /// the endpoint's host.
    #[arg(long, global = true)]
    server_name: Option<String>,
}

impl Connection {
    /// The endpoint called.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The API key or bearer token to call with.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// The client TLS settings of an https:// endpoint; `None` for http://.
    fn tls(&self) -> Result<Option<ClientTlsFiles>, CliError> {
        let https = self.endpoint.starts_with("https://");
        match (&self.ca_file, https) {
            (Some(ca_file), true) => Ok(Some(ClientTlsFiles {
                ca_file: ca_file.clone(),
                cert_file: self.cert_file.clone(),
                key_file: self.key_file.clone(),
                server_name: self.server_name.clone(),
            })),
            (None, true) => Err(usage(
                "--ca-file: required with an https:// endpoint (the CA that signs the control service's certificate)",
            )),
            (Some(_), false) => Err(usage(
                "--endpoint: --ca-file is set, so the endpoint must be https://",
            )),
            (None, false) => Ok(None),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum HandoffCommand {
    /// Create a handoff (idempotent by --request-id).
    Create(Box<CreateArgs>),
    /// Show one handoff.
    Get {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List handoffs, newest first.
    List {
        /// Only handoffs in this state (repeatable): pending, routing, queued,
        /// ringing, connected, completed, failed, cancelled.
        #[arg(long = "state")]
        states: Vec<String>,
        #[arg(long, default_value_t = 20)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Follow a handoff's events until it ends. Exit code: 0 completed or
    /// connected, 6 failed, 7 cancelled.
    Watch {
        id: String,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        connection: Connection,
    },
    /// Play the customer of a chat handoff in this terminal: each line is
    /// a message; the agent's answers are printed. Exit code as for watch.
    Chat {
        id: String,
        /// Only messages after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        connection: Connection,
    },
    /// Add to a waiting handoff's context: transcript turns, entities
    /// (one named like an existing entity corrects it) and notes. Exit
    /// code 8 when the context moved on since --version (read it again).
    Update(Box<update::UpdateArgs>),
    /// Cancel a handoff.
    Cancel {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Idempotency key; a random one when omitted.
    #[arg(long)]
    request_id: Option<String>,
    /// What the human reads first.
    #[arg(long)]
    summary: String,
    /// Target: a queue.
    #[arg(long, group = "target")]
    queue: Option<String>,
    /// Skills required in the queue (repeatable).
    #[arg(long = "skill")]
    skills: Vec<String>,
    /// Target: an E.164 phone number.
    #[arg(long, group = "target")]
    phone: Option<String>,
    /// Target: a SIP URI.
    #[arg(long, group = "target")]
    sip_uri: Option<String>,
    /// Target: a route from the control service's configuration.
    #[arg(long, group = "target")]
    route: Option<String>,
    /// warm, blind or attended.
    #[arg(long, default_value = "warm")]
    mode: String,
    /// voice or chat.
    #[arg(long, default_value = "voice")]
    channel: String,
    /// The conversation's language (BCP 47).
    #[arg(long, default_value = "en")]
    language: String,
    #[arg(long)]
    intent: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    confidence: f32,
    /// A gathered fact, NAME=VALUE (repeatable).
    #[arg(long = "entity")]
    entities: Vec<String>,
    /// A sensitive fact, NAME=VALUE, masked in screen pops (repeatable).
    #[arg(long = "sensitive-entity")]
    sensitive_entities: Vec<String>,
    /// A transcript turn, SPEAKER:TEXT with speaker customer, ai, human or system (repeatable).
    #[arg(long = "turn")]
    turns: Vec<String>,
    /// Something the AI tried, ACTION[:DETAIL] (repeatable; recorded as failed).
    #[arg(long = "tried")]
    attempts: Vec<String>,
    /// explicit_request, distress, complexity, compliance, repeated_failure or other.
    #[arg(long, default_value = "other")]
    reason: String,
    #[arg(long, default_value = "")]
    reason_detail: String,
    #[arg(long, default_value = "")]
    notes: String,
    #[arg(long, default_value_t = 0)]
    priority: u32,
    /// How long routing may take, e.g. 90s.
    #[arg(long)]
    timeout: Option<humantime_serde::re::humantime::Duration>,
    /// Call the customer back at this E.164 number instead of keeping them
    /// on the line (the customer agreed to it: consent is sent as given).
    #[arg(long, value_name = "E164")]
    callback: Option<String>,
    /// With --callback: the window opens this long from now (e.g. 10m);
    /// as soon as possible when omitted.
    #[arg(long, requires = "callback")]
    callback_in: Option<humantime_serde::re::humantime::Duration>,
    /// With --callback: how long the window stays open (e.g. 1h); needed
    /// with --callback-in.
    #[arg(long, requires = "callback")]
    callback_for: Option<humantime_serde::re::humantime::Duration>,
    /// Follow the handoff's events after creating it.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    connection: Connection,
}

pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let code = match status.code() {
            Code::NotFound => exit::NOT_FOUND,
            Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition => {
                exit::REJECTED
            }
            Code::Unavailable | Code::DeadlineExceeded => exit::UNAVAILABLE,
            _ => exit::ERROR,
        };
        CliError {
            code,
            message: format!("{:?}: {}", status.code(), status.message()),
        }
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError {
        code: exit::REJECTED,
        message: message.into(),
    }
}

pub async fn run(command: HandoffCommand) -> u8 {
    match execute(command).await {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("baton: {}", failure.message);
            failure.code
        }
    }
}

type Client = HandoffServiceClient<InterceptedService<Channel, BearerCredential>>;

async fn connect(connection: &Connection) -> Result<Client, CliError> {
    let credential = BearerCredential::new(connection.api_key.as_deref())
        .map_err(|_| usage("--api-key: not a valid header value"))?;
    Ok(HandoffServiceClient::with_interceptor(
        channel(connection).await?,
        credential,
    ))
}

/// A channel to the control service at `connection`'s endpoint, with its
/// TLS settings.
pub async fn channel(connection: &Connection) -> Result<Channel, CliError> {
    let mut endpoint = Channel::from_shared(connection.endpoint.clone())
        .map_err(|e| usage(format!("--endpoint: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    if let Some(files) = connection.tls()? {
        // TlsError names the file's key (tls.ca_file, …): shown as the flag.
        let flag = |e: baton_service_kit::tls::TlsError| {
            usage(format!(
                "--{}",
                e.to_string()
                    .trim_start_matches("tls.")
                    .replacen('_', "-", 1)
            ))
        };
        endpoint = endpoint
            .tls_config(files.tonic_config().map_err(flag)?)
            .map_err(|e| usage(format!("--ca-file: {e}")))?;
    }
    endpoint.connect().await.map_err(|e| CliError {
        code: exit::UNAVAILABLE,
        message: format!("cannot reach {}: {e}", connection.endpoint),
    })
}

async fn execute(command: HandoffCommand) -> Result<u8, CliError> {
    match command {
        HandoffCommand::Create(args) => {
            let request = create_request(&args)?;
            let mut client = connect(&args.connection).await?;
            let response = client.create_handoff(request).await?.into_inner();
            let handoff = response.handoff.unwrap_or_default();
            if args.connection.json {
                println!(
                    "{}",
                    json!({"created": response.created, "handoff": handoff_json(&handoff)})
                );
            } else {
                let verb = if response.created {
                    "created"
                } else {
                    "already existed"
                };
                println!(
                    "handoff {} {verb} ({})",
                    handoff.id,
                    state_name(handoff.state)
                );
                println!("tell the customer: {}", handoff.customer_message);
            }
            if args.watch {
                return watch(&mut client, &handoff.id, 1, args.connection.json).await;
            }
            Ok(exit::OK)
        }
        HandoffCommand::Get { id, connection } => {
            let mut client = connect(&connection).await?;
            let handoff = client
                .get_handoff(GetHandoffRequest { handoff_id: id })
                .await?
                .into_inner()
                .handoff
                .unwrap_or_default();
            if connection.json {
                println!("{}", handoff_json(&handoff));
            } else {
                print_handoff(&handoff);
            }
            Ok(exit::OK)
        }
        HandoffCommand::List {
            states,
            page_size,
            page_token,
            connection,
        } => {
            let states = states
                .iter()
                .map(|s| {
                    HandoffState::from_str_name(&format!(
                        "HANDOFF_STATE_{}",
                        s.to_ascii_uppercase()
                    ))
                    .map(|s| s as i32)
                    .ok_or_else(|| usage(format!("--state: unknown state {s:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut client = connect(&connection).await?;
            let response = client
                .list_handoffs(ListHandoffsRequest {
                    states,
                    page_size,
                    page_token,
                })
                .await?
                .into_inner();
            if connection.json {
                let handoffs: Vec<Value> = response.handoffs.iter().map(handoff_json).collect();
                println!(
                    "{}",
                    json!({"handoffs": handoffs, "next_page_token": response.next_page_token})
                );
            } else {
                for handoff in &response.handoffs {
                    println!(
                        "{}  {:<10} {}",
                        handoff.id,
                        state_name(handoff.state),
                        handoff
                            .context
                            .as_ref()
                            .map(|c| c.summary.as_str())
                            .unwrap_or_default()
                    );
                }
                if !response.next_page_token.is_empty() {
                    println!("more: --page-token {}", response.next_page_token);
                }
            }
            Ok(exit::OK)
        }
        HandoffCommand::Watch {
            id,
            after,
            connection,
        } => {
            let mut client = connect(&connection).await?;
            watch(&mut client, &id, after, connection.json).await
        }
        HandoffCommand::Chat {
            id,
            after,
            connection,
        } => {
            let mut client = connect(&connection).await?;
            chat::chat(&mut client, &id, after, connection.json).await
        }
        HandoffCommand::Update(args) => {
            let mut client = connect(&args.connection).await?;
            update::update(&mut client, &args).await
        }
        HandoffCommand::Cancel {
            id,
            reason,
            connection,
        } => {
            let mut client = connect(&connection).await?;
            let handoff = client
                .cancel_handoff(CancelHandoffRequest {
                    handoff_id: id,
                    reason,
                })
                .await?
                .into_inner()
                .handoff
                .unwrap_or_default();
            if connection.json {
                println!("{}", handoff_json(&handoff));
            } else {
                println!("handoff {} {}", handoff.id, state_name(handoff.state));
            }
            Ok(exit::OK)
        }
    }
}

async fn watch(client: &mut Client, id: &str, after: u64, json: bool) -> Result<u8, CliError> {
    let mut stream = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: id.to_owned(),
            after_sequence: after,
        })
        .await?
        .into_inner();
    let mut last_state = HandoffState::Unspecified;
    while let Some(response) = stream.message().await? {
        let Some(event) = response.event else {
            continue;
        };
        last_state = event.state();
        if json {
            println!("{}", event_json(&event));
        } else {
            println!("{}", event_line(&event));
        }
    }
    Ok(match last_state {
        HandoffState::Failed => exit::HANDOFF_FAILED,
        HandoffState::Cancelled => exit::HANDOFF_CANCELLED,
        _ => exit::OK,
    })
}

fn pair(text: &str, flag: &str) -> Result<(String, String), CliError> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| usage(format!("{flag}: expected NAME=VALUE, got {text:?}")))
}

/// `--entity` and `--sensitive-entity` values (NAME=VALUE) as entities.
fn entities_of(plain: &[String], sensitive: &[String]) -> Result<Vec<pb::Entity>, CliError> {
    let mut entities = Vec::new();
    for (texts, sensitive, flag) in [
        (plain, false, "--entity"),
        (sensitive, true, "--sensitive-entity"),
    ] {
        for text in texts {
            let (name, value) = pair(text, flag)?;
            entities.push(pb::Entity {
                name,
                value,
                r#type: "string".into(),
                sensitive,
            });
        }
    }
    Ok(entities)
}

/// `--turn` values (SPEAKER:TEXT) as transcript turns, stamped `at`.
fn turns_of(
    turns: &[String],
    at: Option<prost_types::Timestamp>,
) -> Result<Vec<pb::Turn>, CliError> {
    turns
        .iter()
        .map(|turn| {
            let (speaker, text) = turn
                .split_once(':')
                .ok_or_else(|| usage(format!("--turn: expected SPEAKER:TEXT, got {turn:?}")))?;
            let speaker =
                pb::Speaker::from_str_name(&format!("SPEAKER_{}", speaker.to_ascii_uppercase()))
                    .ok_or_else(|| usage(format!("--turn: unknown speaker {speaker:?}")))?;
            Ok(pb::Turn {
                speaker: speaker as i32,
                text: text.to_owned(),
                at,
            })
        })
        .collect()
}

fn create_request(args: &CreateArgs) -> Result<CreateHandoffRequest, CliError> {
    let kind = match (&args.queue, &args.phone, &args.sip_uri, &args.route) {
        (Some(name), ..) => pb::target::Kind::Queue(pb::QueueTarget {
            name: name.clone(),
            skills: args.skills.clone(),
        }),
        (_, Some(number), ..) => pb::target::Kind::PhoneNumber(number.clone()),
        (_, _, Some(uri), _) => pb::target::Kind::SipUri(uri.clone()),
        (.., Some(route)) => pb::target::Kind::Route(route.clone()),
        _ => {
            return Err(usage(
                "name a target: --queue, --phone, --sip-uri or --route",
            ));
        }
    };
    let mode = pb::TransferMode::from_str_name(&format!(
        "TRANSFER_MODE_{}",
        args.mode.to_ascii_uppercase()
    ))
    .ok_or_else(|| usage("--mode: expected warm, blind or attended"))?;
    let channel =
        pb::Channel::from_str_name(&format!("CHANNEL_{}", args.channel.to_ascii_uppercase()))
            .ok_or_else(|| usage("--channel: expected voice or chat"))?;
    let reason = pb::EscalationKind::from_str_name(&format!(
        "ESCALATION_KIND_{}",
        args.reason.to_ascii_uppercase()
    ))
    .ok_or_else(|| usage("--reason: unknown escalation kind"))?;
    let entities = entities_of(&args.entities, &args.sensitive_entities)?;
    let now = prost_types::Timestamp::from(std::time::SystemTime::now());
    let transcript = turns_of(&args.turns, Some(now))?;
    let attempts = args
        .attempts
        .iter()
        .map(|text| {
            let (action, detail) = text.split_once(':').unwrap_or((text, ""));
            pb::Attempt {
                action: action.to_owned(),
                outcome: pb::AttemptOutcome::Failed as i32,
                detail: detail.to_owned(),
            }
        })
        .collect();
    Ok(CreateHandoffRequest {
        request_id: args
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        conversation: Some(pb::Conversation {
            channel: channel as i32,
            call: None,
            language: args.language.clone(),
        }),
        context: Some(pb::HandoffContext {
            summary: args.summary.clone(),
            intent: args.intent.as_ref().map(|name| pb::Intent {
                name: name.clone(),
                confidence: args.confidence,
            }),
            entities,
            transcript,
            attempts,
            reason: Some(pb::EscalationReason {
                kind: reason as i32,
                detail: args.reason_detail.clone(),
            }),
            agent_notes: args.notes.clone(),
            priority: args.priority,
        }),
        target: Some(pb::Target { kind: Some(kind) }),
        mode: mode as i32,
        timeout: args
            .timeout
            .and_then(|t| prost_types::Duration::try_from(Duration::from(t)).ok()),
        decision: None,
        callback: args.callback.as_ref().map(|number| callback(number, args)),
    })
}

/// The callback of `--callback`: a window from `--callback-in` for
/// `--callback-for`, or as soon as possible.
fn callback(number: &str, args: &CreateArgs) -> pb::Callback {
    let now = std::time::SystemTime::now();
    let start = args.callback_in.map(|d| now + Duration::from(d));
    let end = args
        .callback_for
        .map(|d| start.unwrap_or(now) + Duration::from(d));
    pb::Callback {
        number: number.to_owned(),
        window_start: start.map(prost_types::Timestamp::from),
        window_end: end.map(prost_types::Timestamp::from),
        consent: true,
    }
}

fn state_name(state: i32) -> String {
    HandoffState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("HANDOFF_STATE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("state {state}"))
}

fn target_text(target: &Option<pb::Target>) -> String {
    match target.as_ref().and_then(|t| t.kind.as_ref()) {
        Some(pb::target::Kind::Queue(queue)) => format!("queue {}", queue.name),
        Some(pb::target::Kind::PhoneNumber(number)) => format!("phone {number}"),
        Some(pb::target::Kind::SipUri(uri)) => format!("sip {uri}"),
        Some(pb::target::Kind::Route(route)) => format!("route {route}"),
        None => "-".into(),
    }
}

fn attempt_json(attempt: &Option<TargetAttempt>) -> Value {
    match attempt {
        Some(a) => {
            json!({"attempt": a.attempt, "connector": a.connector, "target": target_text(&a.target)})
        }
        None => Value::Null,
    }
}

fn failure_json(failure: &Option<Failure>) -> Value {
    match failure {
        Some(f) => json!({
            "reason": pb::FailureReason::try_from(f.reason).map(|r| r.as_str_name()).unwrap_or("FAILURE_REASON_UNSPECIFIED"),
            "detail": f.detail,
        }),
        None => Value::Null,
    }
}

fn queue_json(status: &Option<QueueStatus>) -> Value {
    match status {
        Some(q) => {
            json!({"position": q.position, "estimated_wait_seconds": q.estimated_wait.map(|d| d.seconds)})
        }
        None => Value::Null,
    }
}

fn handoff_json(handoff: &Handoff) -> Value {
    json!({
        "id": handoff.id,
        "request_id": handoff.request_id,
        "state": state_name(handoff.state),
        "target": target_text(&handoff.target),
        "customer_message": handoff.customer_message,
        "customer_message_language": handoff.customer_message_language,
        "current_attempt": attempt_json(&handoff.current_attempt),
        "queue_status": queue_json(&handoff.queue_status),
        "failure": failure_json(&handoff.failure),
        "last_sequence": handoff.last_sequence,
        "context_version": handoff.context_version,
        "summary": handoff.context.as_ref().map(|c| c.summary.clone()),
    })
}

fn event_json(event: &HandoffEvent) -> Value {
    json!({
        "handoff_id": event.handoff_id,
        "sequence": event.sequence,
        "kind": event.kind().as_str_name().trim_start_matches("HANDOFF_EVENT_KIND_").to_ascii_lowercase(),
        "state": state_name(event.state),
        "attempt": attempt_json(&event.attempt),
        "queue_status": queue_json(&event.queue_status),
        "failure": failure_json(&event.failure),
        "detail": event.detail,
        "wrap_up": event.wrap_up.as_ref().map(|w| json!({
            "disposition": w.disposition,
            "notes": w.notes,
            "instruction": w.instruction,
        })),
    })
}

fn event_line(event: &HandoffEvent) -> String {
    let kind = event
        .kind()
        .as_str_name()
        .trim_start_matches("HANDOFF_EVENT_KIND_");
    let mut line = format!(
        "#{:<3} {:<18} → {:<10}",
        event.sequence,
        kind,
        state_name(event.state)
    );
    if let Some(attempt) = &event.attempt {
        line.push_str(&format!(
            " target {} via {} ({})",
            attempt.attempt,
            attempt.connector,
            target_text(&attempt.target)
        ));
    }
    if let Some(queue) = &event.queue_status {
        let wait = queue.estimated_wait.map(|d| d.seconds).unwrap_or_default();
        line.push_str(&format!(" position {} ~{wait}s", queue.position));
    }
    if let Some(failure) = &event.failure {
        let reason = pb::FailureReason::try_from(failure.reason)
            .map(|r| r.as_str_name().trim_start_matches("FAILURE_REASON_"))
            .unwrap_or("UNSPECIFIED");
        line.push_str(&format!(" [{reason}] {}", failure.detail));
    } else if !event.detail.is_empty() {
        line.push_str(&format!(" — {}", event.detail));
    }
    // The runtime's operator needs what the human asked of the AI; the
    // notes stay in --json and GetHandoff, not in the one-line view.
    if event.kind() == HandoffEventKind::HandedBack
        && let Some(wrap_up) = &event.wrap_up
    {
        line.push_str(&format!(" [{}]", wrap_up.disposition));
        if !wrap_up.instruction.is_empty() {
            line.push_str(&format!(" instruction: {}", wrap_up.instruction));
        }
    }
    line
}

fn print_handoff(handoff: &Handoff) {
    println!("handoff   {}", handoff.id);
    println!("state     {}", state_name(handoff.state));
    println!("target    {}", target_text(&handoff.target));
    if let Some(attempt) = &handoff.current_attempt {
        println!(
            "attempt   {} via {} ({})",
            attempt.attempt,
            attempt.connector,
            target_text(&attempt.target)
        );
    }
    if let Some(queue) = &handoff.queue_status {
        println!("queue     position {}", queue.position);
    }
    if let Some(failure) = &handoff.failure {
        println!("failure   {}", failure_json(&Some(failure.clone())));
    }
    if let Some(context) = &handoff.context {
        println!("summary   {}", context.summary);
    }
    println!("message   {}", handoff.customer_message);
}
