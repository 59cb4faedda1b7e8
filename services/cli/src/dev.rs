//! `baton dev`: the whole of Baton on loopback, on its embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton_connector_queue::QueueConfig;
use baton_connector_script::ScriptConfig;
use baton_connector_sdk::config::StoreConfig;
use baton_connector_sdk::{RunnableConnector, ServeConnector};
use baton_connector_sip::SipConfig;
use baton_control::ControlConfig;
use baton_control::config::ConnectorConfig;
use baton_control::domain::routing::{DefaultConnectors, RouteConfig, RouteTargetConfig};
use baton_service_kit::tls::TlsConfig;
use baton_service_kit::tls::dev_ca::{self, DevCa};
use baton_service_kit::{lifecycle, telemetry};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where the embedded store, the queue and the SIP connector's
    /// transfer journal keep their data.
    #[arg(long, default_value = ".baton/dev")]
    data_dir: PathBuf,
    /// The control service's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// The control service's HTTP address (context and screen pops).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// The embedded queue's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50071")]
    queue_listen: SocketAddr,
    /// The agent desktop's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    desktop_listen: SocketAddr,
    /// The SIP connector's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50062")]
    sip_listen: SocketAddr,
    /// The SIP connector's SIP address (UDP and TCP on one port).
    #[arg(long, default_value = "127.0.0.1:5062")]
    sip_bind: SocketAddr,
    /// The demo connector's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50061")]
    demo_listen: SocketAddr,
    /// Serve every listener with TLS and connect the control service to the
    /// connectors with mTLS, with a throwaway CA and certificates made in
    /// `<data-dir>/tls` (new ones at every start; never for production).
    #[arg(long)]
    tls: bool,
}

fn steps(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| s.to_string()).collect()
}

/// The demo contact center behind the embedded queue: queue `overflow`
/// queues, rings and connects a scripted agent; queue `sales` has nobody.
fn demo_config(listen: SocketAddr, tls: Option<TlsConfig>) -> ScriptConfig {
    let mut config = ScriptConfig {
        name: "demo".into(),
        tls,
        ..Default::default()
    };
    config.server.grpc_listen = listen;
    config.targets.insert(
        "overflow".into(),
        steps(&[
            "queued:2:40s",
            "sleep:2s",
            "queued:1:20s",
            "sleep:2s",
            "offered",
            "sleep:1s",
            "answered",
            "context_delivered",
            "connected",
            "sleep:20s",
            "completed",
        ]),
    );
    config
        .targets
        .insert("sales".into(), steps(&["failed:no_agents"]));
    config
}

/// The embedded queue, with its store, journal and desktop accounts in the
/// dev data directory.
fn queue_config(args: &DevArgs, tls: Option<TlsConfig>) -> QueueConfig {
    let mut config = QueueConfig {
        store: StoreConfig::at(Some(args.data_dir.join("queue"))),
        tls,
        ..Default::default()
    };
    config.server.grpc_listen = args.queue_listen;
    config.server.http_listen = Some(args.desktop_listen);
    config.desk.accounts_file = Some(desk_accounts_file(args));
    config
}

fn desk_accounts_file(args: &DevArgs) -> std::path::PathBuf {
    args.data_dir.join("queue").join("desk-accounts.toml")
}

/// The sign-ins `baton dev` prints: an agent and a supervisor of the dev
/// API key's tenant, with passwords made anew at each start (like the API
/// key, the old ones stop working).
struct DevSignIns {
    agent: (String, String),
    supervisor: (String, String),
}

fn dev_sign_ins(args: &DevArgs) -> anyhow::Result<DevSignIns> {
    use baton_connector_queue::accounts::{Account, Role};
    let file = desk_accounts_file(args);
    let mut made = Vec::new();
    for (name, role, skills) in [
        ("agent", Role::Agent, vec!["support".to_owned()]),
        ("supervisor", Role::Supervisor, Vec::new()),
    ] {
        let password = random_password();
        let account = Account {
            name: name.into(),
            display_name: None,
            role,
            tenants: vec![DEV_TENANT.into()],
            skills,
            contact: String::new(),
            password: String::new(),
        };
        crate::desk::add_account(&file, account, &password).map_err(anyhow::Error::msg)?;
        made.push((name.to_owned(), password));
    }
    let supervisor = made.pop().unwrap_or_default();
    let agent = made.pop().unwrap_or_default();
    Ok(DevSignIns { agent, supervisor })
}

/// The tenant of the dev API key, whose customers the dev accounts see.
const DEV_TENANT: &str = "default";

/// 16 random letters and digits: typed once into a browser, then kept by
/// it.
fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The SIP connector with its journal on, as in deployments: a restarted
/// `baton dev` ends the legs the previous run left ringing instead of
/// forgetting them.
fn sip_config(args: &DevArgs, tls: Option<TlsConfig>) -> SipConfig {
    let mut config = SipConfig {
        store: StoreConfig::at(Some(args.data_dir.join("sip"))),
        tls,
        ..Default::default()
    };
    config.server.grpc_listen = args.sip_listen;
    config.sip.bind = args.sip_bind;
    config
}

/// A connector running in this process, bound and served through the
/// SDK's interface as its own binary would be.
struct Running {
    endpoints: Vec<(String, SocketAddr)>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Binds the connector of `config` and serves it until `stop`.
    async fn start<C: RunnableConnector>(
        config: C,
        stop: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let bound = config.bind().await?;
        let endpoints = bound.endpoints();
        let stop = stop.clone();
        let task = tokio::spawn(bound.serve(async move { stop.cancelled().await }));
        Ok(Self { endpoints, task })
    }

    /// The address the connector announced as `name` (`grpc`, `http`, `sip`…).
    fn addr(&self, name: &str) -> anyhow::Result<SocketAddr> {
        self.endpoints
            .iter()
            .find(|(endpoint, _)| endpoint == name)
            .map(|(_, addr)| *addr)
            .ok_or_else(|| anyhow::anyhow!("no {name} address"))
    }
}

fn connector(endpoint: SocketAddr, tls: Option<&DevCa>) -> ConnectorConfig {
    let scheme = if tls.is_some() { "https" } else { "http" };
    ConnectorConfig::new(format!("{scheme}://{endpoint}"))
}

/// Queue `support` goes to the embedded queue, where a human signed in on
/// the agent desktop gets the screen pop; with nobody signed in, route
/// `support` falls back to the demo contact center's `overflow` queue.
fn control_config(
    args: &DevArgs,
    queue: SocketAddr,
    sip: SocketAddr,
    demo: SocketAddr,
    tls: Option<&DevCa>,
) -> ControlConfig {
    let mut config = ControlConfig::default();
    config.server.grpc_listen = args.grpc_listen;
    config.server.http_listen = args.http_listen;
    config.store.data_dir = args.data_dir.join("control");
    if let Some(ca) = tls {
        // TLS for callers (the CLI needs only the CA), mTLS to connectors.
        config.tls = Some(TlsConfig::new(&ca.server_cert, &ca.server_key));
        config.connector_tls = Some(ca.client_files());
    }
    config
        .connectors
        .insert("queue".into(), connector(queue, tls));
    config.connectors.insert("sip".into(), connector(sip, tls));
    config
        .connectors
        .insert("demo".into(), connector(demo, tls));
    config.default_connectors = DefaultConnectors {
        queue: Some("queue".into()),
        phone_number: Some("sip".into()),
        sip_uri: Some("sip".into()),
    };
    config.routes.push(RouteConfig {
        name: "support".into(),
        queues: vec!["support".into()],
        intents: vec!["support.*".into()],
        languages: vec![],
        targets: vec![
            RouteTargetConfig::queue("queue", "support"),
            RouteTargetConfig::queue("demo", "overflow"),
        ],
        hours: None,
    });
    // The embedded desktop masks sensitive entities until an agent reveals
    // one (audited), so it may have them in clear; other connectors get the
    // default data policy.
    config.data_policy.connectors.insert(
        "queue".into(),
        baton_control::disclosure::FieldForms {
            sensitive_entities: Some(baton_control::disclosure::Form::Clear),
            ..Default::default()
        },
    );
    config
}

/// Replaces the dev keys file with one fresh admin key of the default
/// tenant, and returns the key: authentication stays on in `baton dev`, as
/// in production, and a key printed by an earlier run stops working.
fn dev_api_key(config: &ControlConfig) -> anyhow::Result<String> {
    use baton_auth::api_key::{KeysFile, mint};
    let path = config
        .api_keys_file()
        .ok_or_else(|| anyhow::anyhow!("auth.api_keys_file: none"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let minted = mint(
        &config.auth.default_tenant,
        &[baton_auth::Role::Admin],
        Some("baton dev"),
        None,
    )?;
    KeysFile {
        keys: vec![minted.entry],
    }
    .write(&path)?;
    Ok(minted.key)
}

pub async fn run(args: DevArgs) -> u8 {
    let _telemetry = match telemetry::init("baton", &Default::default()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("baton dev: {error}");
            return exit::ERROR;
        }
    };
    match start(args).await {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("baton dev: {error:#}");
            exit::ERROR
        }
    }
}

async fn start(args: DevArgs) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let ca = if args.tls {
        Some(dev_ca::generate(&args.data_dir.join("tls"))?)
    } else {
        None
    };
    // Connectors require the control service's client certificate (mTLS).
    let connector_tls = ca.as_ref().map(DevCa::server_config);

    let sign_ins = dev_sign_ins(&args)?;
    let demo = Running::start(demo_config(args.demo_listen, connector_tls.clone()), &stop).await?;
    let demo_addr = demo.addr("grpc")?;
    let queue = Running::start(queue_config(&args, connector_tls.clone()), &stop).await?;
    let (queue_addr, desktop) = (queue.addr("grpc")?, queue.addr("http")?);
    let sip = Running::start(sip_config(&args, connector_tls), &stop).await?;
    let (sip_grpc, sip_addr) = (sip.addr("grpc")?, sip.addr("sip")?);

    let config = control_config(&args, queue_addr, sip_grpc, demo_addr, ca.as_ref());
    let api_key = dev_api_key(&config)?;
    let control = baton_control::bind(config).await?;
    let (grpc, http) = (control.grpc_addr, control.http_addr);
    let control_stop = stop.clone();
    let control_task = tokio::spawn(control.serve(async move { control_stop.cancelled().await }));

    let (scheme, tls_note, client_flags, grpcurl_flags) = match &ca {
        Some(ca) => (
            "https",
            format!(
                "\nEvery listener serves TLS; connectors require the control service's client\n\
                 certificate (mTLS). Throwaway CA (trust it in clients): {}\n",
                ca.ca_cert.display()
            ),
            format!(
                " \\\n      --endpoint https://{grpc} --ca-file {}",
                ca.ca_cert.display()
            ),
            format!("-cacert {}", ca.ca_cert.display()),
        ),
        None => (
            "http",
            String::new(),
            String::new(),
            "-plaintext".to_owned(),
        ),
    };
    println!(
        r#"
Baton is running on loopback (data in {data}).
{tls_note}
  control gRPC   {grpc}   (baton.handoff.v1.HandoffService, health, reflection)
  context HTTP   {scheme}://{http}   (context JSON and screen-pop pages)
  agent desktop  {scheme}://{desktop}/   (supervisor: {scheme}://{desktop}/supervisor)
  queue          {queue_addr}   (embedded queue "support", skill "support")
  SIP connector  {sip_grpc}   (SIP on udp {sip_addr}: sip_uri and phone_number targets)
  demo connector {demo_addr}   (scripted "overflow" queue behind "support")

Every gRPC call needs an API key. This run's key (tenant "default", role
admin; a new one each start, the old one stops working):

  export BATON_API_KEY={api_key}

Desktop sign-ins (tenant "default"; new passwords each start):

  agent        {agent_name} / {agent_password}   (skill "support")
  supervisor   {supervisor_name} / {supervisor_password}   (at /supervisor)

More accounts: baton desk account add --file {accounts} --name ann --role agent --tenant default --skill support

Try: open the agent desktop, sign in as the agent and go available;
then, in another terminal (with BATON_API_KEY set):

  cargo run --release -p baton -- handoff create --queue support \
      --summary "Customer was charged twice for March" --intent support.billing \
      --entity issue_type="double charge" --sensitive-entity account_number=12345678 \
      --turn "customer:I want to talk to a person" --reason explicit_request --watch{client_flags}

The screen pop appears on the desktop; accept it and the watch shows CONNECTED.
With nobody signed in, the queue answers NO_AGENTS and the handoff falls back
to the demo contact center.

or with grpcurl:

  grpcurl {grpcurl_flags} -H "authorization: Bearer $BATON_API_KEY" -d '{{"request_id":"r1","conversation":{{"channel":"CHANNEL_VOICE","language":"en"}},"context":{{"summary":"Charged twice"}},"target":{{"queue":{{"name":"support"}}}}}}' \
      {grpc} baton.handoff.v1.HandoffService/CreateHandoff

Press Ctrl-C to stop.
"#,
        data = args.data_dir.display(),
        api_key = api_key,
        agent_name = sign_ins.agent.0,
        agent_password = sign_ins.agent.1,
        supervisor_name = sign_ins.supervisor.0,
        supervisor_password = sign_ins.supervisor.1,
        accounts = desk_accounts_file(&args).display(),
    );

    lifecycle::shutdown_signal().await;
    stop.cancel();
    control_task.await??;
    queue.task.await??;
    sip.task.await??;
    demo.task.await??;
    Ok(())
}
