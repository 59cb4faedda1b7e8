//! Tenants as a scope (issue 20) through the real binaries: one control
//! service, two tenants (API keys of `acme` and `globex`), a shared
//! scripted connector and one dedicated to `acme` (`[server] tenants`).
//!
//! - Both tenants ask for the route `support`: acme's reaches its own
//!   connector and queue, globex's the shared one, each with its own
//!   customer message.
//! - acme may use only its connector, so a queue target that only the
//!   shared default connector would serve is refused at CreateHandoff.
//! - globex's route first names acme's dedicated connector: that connector
//!   refuses the transfer (INVALID_ARGUMENT naming `tenant`) before its
//!   script sees it, the control service records the target as failed and
//!   falls back to the route's next target.

mod common;

use std::path::Path;
use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::auth::Client;
use baton_tests::{Service, start_control};
use common::{bad_fields, kinds, queue, request, start_script_connector};
use tonic::Code;

const ACME_MESSAGE: &str = "Acme: a specialist picks up from here.";
const GLOBEX_MESSAGE: &str = "Globex: one moment, a colleague takes over.";

/// Every transfer ends on its own: the default script connects.
const SCRIPT: &str = r#"
name = "script"
default_script = ["ringing", "answered", "connected", "completed"]
"#;

/// A key of `tenant` for the AI runtime, minted by `baton auth new-key`.
fn new_key(keys_file: &Path, tenant: &str) -> String {
    baton_tests::auth::new_key(keys_file, tenant, &["ai_runtime"], tenant)
}

async fn client(control: &Service, key: &str) -> Client {
    baton_tests::auth::client(control, Some(key)).await
}

/// The transfers a scripted connector under `dir` ran, one JSON object
/// each.
fn transfers(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("transfers.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn of_handoff<'a>(transfers: &'a [serde_json::Value], id: &str) -> Vec<&'a serde_json::Value> {
    transfers.iter().filter(|t| t["handoff_id"] == id).collect()
}

async fn watch_all(client: &mut Client, id: &str) -> Vec<HandoffEvent> {
    let mut stream = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: id.into(),
            after_sequence: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    // A failure guard, not a measured time.
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut events = Vec::new();
        while let Ok(Some(response)) = stream.message().await {
            events.extend(response.event);
        }
        events
    })
    .await
    .expect("the handoff ends")
}

async fn create(client: &mut Client, request: CreateHandoffRequest) -> Handoff {
    client
        .create_handoff(request)
        .await
        .expect("created")
        .into_inner()
        .handoff
        .expect("handoff")
}

#[tokio::test]
async fn tenants_have_their_own_routes_connectors_and_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (shared_dir, acme_dir) = (dir.path().join("shared"), dir.path().join("acme-cc"));
    for sub in [&shared_dir, &acme_dir] {
        std::fs::create_dir_all(sub).expect("dir");
    }
    let shared = start_script_connector(
        &shared_dir,
        &format!("{SCRIPT}\n[server]\ngrpc_listen = \"127.0.0.1:0\"\n"),
        &[],
    )
    .await;
    let dedicated = start_script_connector(
        &acme_dir,
        &format!("{SCRIPT}\n[server]\ngrpc_listen = \"127.0.0.1:0\"\ntenants = [\"acme\"]\n"),
        &[],
    )
    .await;

    let keys = dir.path().join("api-keys.toml");
    let acme_key = new_key(&keys, "acme");
    let globex_key = new_key(&keys, "globex");
    let sections = format!(
        r#"
[connectors.shared]
endpoint = "{shared}"
[connectors.acme-cc]
endpoint = "{dedicated}"

[default_connectors]
queue = "shared"

[[routes]]
name = "support"
targets = [{{ connector = "shared", queue = "support" }}]

[tenants.acme]
connectors = ["acme-cc"]
routes = [{{ name = "support", targets = [{{ connector = "acme-cc", queue = "acme-tier1" }}] }}]
[tenants.acme.messages.translations]
en = "{ACME_MESSAGE}"

# globex's first target is acme's dedicated connector, which refuses it.
[tenants.globex]
routes = [{{ name = "support", targets = [{{ connector = "acme-cc", queue = "globex-tier1" }}, {{ connector = "shared", queue = "globex-support" }}] }}]
[tenants.globex.messages.translations]
en = "{GLOBEX_MESSAGE}"
"#,
        shared = shared.endpoint("grpc"),
        dedicated = dedicated.endpoint("grpc"),
    );
    let keys_file = keys.display().to_string();
    let control = start_control(
        dir.path(),
        &sections,
        &[
            ("BATON_AUTH__MODE", "required"),
            ("BATON_AUTH__API_KEYS_FILE", keys_file.as_str()),
        ],
    )
    .await
    .expect("control starts");
    let mut acme = client(&control, &acme_key).await;
    let mut globex = client(&control, &globex_key).await;
    let support = || pb::target::Kind::Route("support".into());

    // The same route name: each tenant's own connector, queue and message.
    let acme_handoff = create(&mut acme, request("acme-1", support())).await;
    assert_eq!(acme_handoff.customer_message, ACME_MESSAGE);
    let events = watch_all(&mut acme, &acme_handoff.id).await;
    assert_eq!(events.last().expect("event").kind(), K::Completed);
    let ran = transfers(&acme_dir);
    let acme_transfers = of_handoff(&ran, &acme_handoff.id);
    assert_eq!(acme_transfers.len(), 1, "{ran:?}");
    assert_eq!(acme_transfers[0]["target"], "acme-tier1");
    assert_eq!(acme_transfers[0]["tenant"], "acme");
    assert!(of_handoff(&transfers(&shared_dir), &acme_handoff.id).is_empty());

    // acme may use only its own connector: a queue target it names
    // directly would go to the shared default connector, so it has none.
    let refused = acme
        .create_handoff(request("acme-2", queue("support")))
        .await
        .expect_err("no connector acme may use serves it");
    assert_eq!(bad_fields(&refused), ["target"]);
    assert!(refused.message().contains("no connector"), "{refused:?}");

    // globex: acme's dedicated connector refuses it before its script runs;
    // the control service records the failure and falls back.
    let globex_handoff = create(&mut globex, request("globex-1", support())).await;
    assert_eq!(globex_handoff.customer_message, GLOBEX_MESSAGE);
    let events = watch_all(&mut globex, &globex_handoff.id).await;
    let seen = kinds(&events);
    assert_eq!(seen.last(), Some(&K::Completed), "{seen:?}");
    let failed = events
        .iter()
        .find(|e| e.kind() == K::TargetFailed)
        .expect("the dedicated connector's target failed");
    let failure = failed.failure.as_ref().expect("failure");
    assert_eq!(failure.reason(), pb::FailureReason::Unsupported);
    assert!(failure.detail.contains("tenant"), "{}", failure.detail);
    assert_eq!(failed.attempt.as_ref().expect("attempt").attempt, 1);
    assert!(
        of_handoff(&transfers(&acme_dir), &globex_handoff.id).is_empty(),
        "the dedicated connector's script never saw globex's transfer"
    );
    let ran = transfers(&shared_dir);
    let fell_back = of_handoff(&ran, &globex_handoff.id);
    assert_eq!(fell_back.len(), 1, "{ran:?}");
    assert_eq!(fell_back[0]["target"], "globex-support");
    assert_eq!(fell_back[0]["attempt"], 2);
    assert_eq!(fell_back[0]["tenant"], "globex");

    // The API keeps the tenants apart as before.
    let acme_get = acme
        .get_handoff(GetHandoffRequest {
            handoff_id: globex_handoff.id.clone(),
        })
        .await
        .expect_err("another tenant's handoff");
    assert_eq!(acme_get.code(), Code::NotFound);
}

/// `baton config check` reports a tenant's mistakes naming the key, as the
/// control service refuses them at start.
#[test]
fn config_check_names_the_tenant_key_at_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = "[connectors.queue]\nendpoint = \"http://127.0.0.1:50061\"\n\
                  [connectors.acme-cc]\nendpoint = \"http://127.0.0.1:50063\"\n";
    for (tenant, key) in [
        (
            "[tenants.acme]\nroutes = [{ name = \"support\", targets = [\
             { connector = \"acme-cc\", queue = \"a\" }, { connector = \"x\", queue = \"b\" }] }]\n",
            "tenants.acme.routes[0].targets[1].connector: unknown connector \"x\"",
        ),
        (
            "[tenants.acme]\nconnectors = [\"acme-cc\"]\nroutes = [{ name = \"support\", \
             targets = [{ connector = \"queue\", queue = \"a\" }] }]\n",
            "tenants.acme.routes[0].targets[0].connector: tenant \"acme\" may not use connector \"queue\"",
        ),
    ] {
        let path = dir.path().join("control.toml");
        std::fs::write(&path, format!("{shared}{tenant}")).expect("write");
        let output = std::process::Command::new(baton_tests::binary("baton"))
            .args(["config", "check", "--component", "control"])
            .arg(&path)
            .output()
            .expect("baton runs");
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(4), "{said}");
        assert!(said.contains(key), "{said}");
    }
}
