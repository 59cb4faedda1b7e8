//! Attacks on a control service that requires credentials: API keys of two
//! tenants minted with `baton auth new-key`, an HS256 JWT and an RS256 JWT
//! checked against a JWKS file. Cross-tenant reads are NOT_FOUND, bad
//! credentials UNAUTHENTICATED, a role without the right PERMISSION_DENIED,
//! floods RESOURCE_EXHAUSTED; context tokens open nothing once expired,
//! altered, revoked or for another handoff; control characters never reach
//! SIP headers, HTML or logs; and no secret or sensitive value reaches any
//! log the processes wrote.

mod common;

use std::path::Path;
use std::time::Duration;

use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::auth::{Client, new_key};
use common::{Stack, bad_fields, http_get, queue, request};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// The RSA key of baton-auth's tests (generating one in a debug build is slow).
const RSA_PEM: &[u8] = include_bytes!("../../services/auth/tests/fixtures/rsa-test-key.pem");
const HS256_SECRET: &str = "a shared HS256 secret of more than thirty-two bytes";
const SENSITIVE_ACCOUNT: &str = "ACC-99887766";
const SENSITIVE_CALLER: &str = "+14155550123";

async fn client(stack: &Stack, credential: Option<&str>) -> Client {
    baton_tests::auth::client(stack.control(), credential).await
}

/// Runs `baton auth …` and returns its stdout.
fn baton_auth(args: &[&str]) -> String {
    let output = std::process::Command::new(baton_tests::binary("baton"))
        .arg("auth")
        .args(args)
        .output()
        .expect("baton runs");
    assert!(
        output.status.success(),
        "baton auth {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn jwt(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    tenant: &str,
    roles: &[&str],
    exp: u64,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let claims =
        json!({ "sub": format!("{tenant}-user"), "tenant": tenant, "roles": roles, "exp": exp });
    jsonwebtoken::encode(&header, &claims, key).expect("sign")
}

/// Key files and credentials for two tenants, acme and globex.
struct Secrets {
    dir: tempfile::TempDir,
    acme_runtime: String,
    acme_supervisor: String,
    acme_desktop: String,
    globex_runtime: String,
    to_revoke: String,
    acme_hs256: String,
    globex_rs256: String,
    expired_hs256: String,
    forged_hs256: String,
}

impl Secrets {
    fn new() -> Secrets {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("api-keys.toml");
        let acme_runtime = new_key(&keys, "acme", &["ai_runtime"], "acme voice bot");
        let acme_supervisor = new_key(&keys, "acme", &["supervisor"], "acme supervisor");
        let acme_desktop = new_key(&keys, "acme", &["agent_desktop"], "acme desktop");
        let globex_runtime = new_key(&keys, "globex", &["ai_runtime", "supervisor"], "globex bot");
        let to_revoke = new_key(&keys, "acme", &["ai_runtime"], "leaked key");
        std::fs::write(dir.path().join("jwt.secret"), HS256_SECRET).expect("secret");
        let rsa = EncodingKey::from_rsa_pem(RSA_PEM).expect("pem");
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("jwk");
        jwk.common.key_id = Some("idp-1".into());
        std::fs::write(
            dir.path().join("jwks.json"),
            serde_json::to_string(&jsonwebtoken::jwk::JwkSet { keys: vec![jwk] }).expect("json"),
        )
        .expect("jwks");
        let hs = EncodingKey::from_secret(HS256_SECRET.as_bytes());
        let forged = EncodingKey::from_secret(b"another secret that is also long enough!!");
        Secrets {
            acme_hs256: jwt(
                Algorithm::HS256,
                None,
                &hs,
                "acme",
                &["ai_runtime"],
                now() + 600,
            ),
            globex_rs256: jwt(
                Algorithm::RS256,
                Some("idp-1"),
                &rsa,
                "globex",
                &["supervisor"],
                now() + 600,
            ),
            expired_hs256: jwt(
                Algorithm::HS256,
                None,
                &hs,
                "acme",
                &["ai_runtime"],
                now() - 3600,
            ),
            forged_hs256: jwt(
                Algorithm::HS256,
                None,
                &forged,
                "acme",
                &["admin"],
                now() + 600,
            ),
            dir,
            acme_runtime,
            acme_supervisor,
            acme_desktop,
            globex_runtime,
            to_revoke,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("BATON_AUTH__MODE".into(), "required".into()),
            (
                "BATON_AUTH__API_KEYS_FILE".into(),
                self.path("api-keys.toml"),
            ),
            (
                "BATON_AUTH__JWT__HS256_SECRET_FILE".into(),
                self.path("jwt.secret"),
            ),
            ("BATON_AUTH__JWT__JWKS_FILE".into(), self.path("jwks.json")),
        ]
    }

    /// Every secret the suite seeded, for the log grep.
    fn all(&self) -> Vec<&str> {
        vec![
            &self.acme_runtime,
            &self.acme_supervisor,
            &self.acme_desktop,
            &self.globex_runtime,
            &self.to_revoke,
            &self.acme_hs256,
            &self.globex_rs256,
            &self.expired_hs256,
            &self.forged_hs256,
            HS256_SECRET,
        ]
    }
}

async fn start(secrets: &Secrets, extra: &[(&str, &str)]) -> Stack {
    let mut env = secrets.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Stack::start_with_env(&[], &env).await
}

fn get(id: &str) -> GetHandoffRequest {
    GetHandoffRequest {
        handoff_id: id.into(),
    }
}

/// Every event of `id`, from the first.
fn watch_from_start(id: &str) -> WatchHandoffRequest {
    WatchHandoffRequest {
        handoff_id: id.into(),
        after_sequence: 0,
    }
}

fn reveal(id: &str, entity_name: &str) -> RevealEntityRequest {
    RevealEntityRequest {
        handoff_id: id.into(),
        entity_name: entity_name.into(),
    }
}

fn revoke_tokens(id: &str) -> RevokeContextTokensRequest {
    RevokeContextTokensRequest {
        handoff_id: id.into(),
    }
}

fn cancel(id: &str, reason: &str) -> CancelHandoffRequest {
    CancelHandoffRequest {
        handoff_id: id.into(),
        reason: reason.into(),
    }
}

/// The audit records `request` selects.
async fn audit_records(client: &mut Client, request: ListAuditRecordsRequest) -> Vec<AuditRecord> {
    client
        .list_audit_records(request)
        .await
        .expect("audit")
        .into_inner()
        .records
}

/// The audit records of `id`.
fn audit_of(id: &str) -> ListAuditRecordsRequest {
    ListAuditRecordsRequest {
        handoff_id: id.into(),
        ..Default::default()
    }
}

/// The ids of the handoffs `client` may list.
async fn listed_ids(client: &mut Client) -> Vec<String> {
    client
        .list_handoffs(ListHandoffsRequest::default())
        .await
        .expect("lists")
        .into_inner()
        .handoffs
        .into_iter()
        .map(|h| h.id)
        .collect()
}

async fn create(client: &mut Client, request_id: &str, target: &str) -> String {
    baton_tests::created_id(
        client
            .create_handoff(request(request_id, queue(target)))
            .await,
    )
}

/// acme's handoff `request_id` to the agents, once it completed: its id
/// and the screen-pop path (with its token) the connector received.
async fn completed_handoff(stack: &Stack, acme: &mut Client, request_id: &str) -> (String, String) {
    let id = create(acme, request_id, "agents").await;
    let pop = screen_pop_path(stack, &id).await;
    wait_state(acme, &id, HandoffState::Completed).await;
    (id, pop)
}

/// The screen-pop path (with its token) the connector received for `id`.
async fn screen_pop_path(stack: &Stack, id: &str) -> String {
    for _ in 0..200 {
        if let Some(url) = stack
            .transfers()
            .iter()
            .find(|t| t["handoff_id"] == id)
            .and_then(|t| t["screen_pop_url"].as_str().map(str::to_owned))
        {
            return url[url.find("/v1/").expect("path")..].to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no transfer of {id} reached the connector");
}

fn token_of(path: &str) -> String {
    path.split("token=").nth(1).expect("token").to_owned()
}

/// Waits until `id` is in `state`.
async fn wait_state(client: &mut Client, id: &str, state: HandoffState) {
    for _ in 0..400 {
        let handoff = client
            .get_handoff(get(id))
            .await
            .expect("get")
            .into_inner()
            .handoff
            .expect("handoff");
        if handoff.state() == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {state:?}");
}

fn assert_code<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    what: &str,
) -> tonic::Status {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    status
}

/// Every line of every log file under `dir`.
fn logs_under(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            found.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap_or_default(),
            ));
        }
    }
    assert!(!found.is_empty(), "no log files under {}", dir.display());
    found
}

fn assert_logs_clean(stack: &Stack, secrets: &[&str]) {
    for (path, text) in logs_under(stack.data_dir()) {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{path} contains a seeded secret or sensitive value"
            );
        }
        for line in text.lines() {
            assert!(
                !line.starts_with("FAKE-LOG-LINE"),
                "{path}: injected log line: {line}"
            );
        }
    }
}

#[tokio::test]
async fn attacks_on_the_api_and_the_context_endpoints_get_nothing() {
    let secrets = Secrets::new();
    let stack = start(
        &secrets,
        &[("BATON_LIMITS__MAX_WATCH_STREAMS_PER_TENANT", "2")],
    )
    .await;
    let http = stack.control().addr("http");
    let mut acme = client(&stack, Some(&secrets.acme_runtime)).await;
    let mut acme_supervisor = client(&stack, Some(&secrets.acme_supervisor)).await;
    let mut acme_desktop = client(&stack, Some(&secrets.acme_desktop)).await;
    let mut globex = client(&stack, Some(&secrets.globex_runtime)).await;
    let mut seen_tokens: Vec<String> = Vec::new();

    // --- credentials ------------------------------------------------------
    let unknown = uuid::Uuid::now_v7().to_string();
    baton_tests::wait_serving(&stack.control().endpoint("grpc"))
        .await
        .expect("health needs no credential");
    let fake_key = format!("bk_0123456789abcdef_{}", "A".repeat(43));
    for (credential, what) in [
        (None, "no credential"),
        (Some(fake_key.as_str()), "an unknown API key"),
        (Some("not-a-credential"), "garbage"),
        (
            Some(secrets.forged_hs256.as_str()),
            "a JWT signed with another secret",
        ),
        (Some(secrets.expired_hs256.as_str()), "an expired JWT"),
    ] {
        let mut caller = client(&stack, credential).await;
        let status = assert_code(
            caller.get_handoff(get(&unknown)).await,
            Code::Unauthenticated,
            what,
        );
        assert!(!status.message().contains("bk_"), "{what}: {status:?}");
        assert_code(
            caller
                .create_handoff(request(&format!("anon-{what}"), queue("agents")))
                .await,
            Code::Unauthenticated,
            what,
        );
    }

    // --- tenants ----------------------------------------------------------
    let held = create(&mut acme, "held", "hold").await;
    let done = create(&mut acme, "done", "agents").await;
    let theirs = create(&mut globex, "theirs", "agents").await;
    // The HS256 JWT is acme's, the RS256 JWT globex's supervisor.
    let mut acme_jwt = client(&stack, Some(&secrets.acme_hs256)).await;
    acme_jwt
        .get_handoff(get(&held))
        .await
        .expect("acme's JWT reads acme's handoff");
    let mut globex_jwt = client(&stack, Some(&secrets.globex_rs256)).await;
    let listed = listed_ids(&mut globex_jwt).await;
    assert_eq!(
        listed,
        std::slice::from_ref(&theirs),
        "globex lists only its own"
    );
    let listed = listed_ids(&mut acme_supervisor).await;
    assert!(listed.contains(&held) && listed.contains(&done) && !listed.contains(&theirs));

    let not_found = assert_code(
        globex.get_handoff(get(&unknown)).await,
        Code::NotFound,
        "unknown id",
    );
    for (caller, what) in [(&mut globex, "globex key"), (&mut globex_jwt, "globex JWT")] {
        let status = assert_code(caller.get_handoff(get(&held)).await, Code::NotFound, what);
        assert_eq!(
            status.message(),
            not_found.message(),
            "existence must not show"
        );
        assert_code(
            caller.watch_handoff(watch_from_start(&held)).await,
            Code::NotFound,
            what,
        );
        assert_code(
            caller.reveal_entity(reveal(&held, "account_number")).await,
            Code::NotFound,
            what,
        );
        assert_code(
            caller.revoke_context_tokens(revoke_tokens(&held)).await,
            Code::NotFound,
            what,
        );
    }
    assert_code(
        globex.cancel_handoff(cancel(&held, "x")).await,
        Code::NotFound,
        "cross-tenant cancel",
    );
    let records = audit_records(&mut globex, audit_of(&held)).await;
    assert!(
        records.is_empty(),
        "globex sees no audit record of acme's handoff: {records:?}"
    );

    // --- roles ------------------------------------------------------------
    assert_code(
        acme_desktop
            .create_handoff(request("desk", queue("agents")))
            .await,
        Code::PermissionDenied,
        "desktop creates",
    );
    assert_code(
        acme_desktop
            .list_handoffs(ListHandoffsRequest::default())
            .await,
        Code::PermissionDenied,
        "desktop lists",
    );
    assert_code(
        acme.list_handoffs(ListHandoffsRequest::default()).await,
        Code::PermissionDenied,
        "runtime lists",
    );
    assert_code(
        acme.list_audit_records(ListAuditRecordsRequest::default())
            .await,
        Code::PermissionDenied,
        "runtime reads the audit log",
    );
    assert_code(
        acme.reveal_entity(reveal(&held, "account_number")).await,
        Code::PermissionDenied,
        "runtime reveals",
    );

    // --- a revoked API key --------------------------------------------------
    let mut leaked = client(&stack, Some(&secrets.to_revoke)).await;
    leaked
        .get_handoff(get(&held))
        .await
        .expect("works before revocation");
    let id = secrets.to_revoke[3..19].to_owned();
    baton_auth(&[
        "revoke-key",
        "--keys-file",
        &secrets.path("api-keys.toml"),
        "--id",
        &id,
    ]);
    assert_code(
        leaked.get_handoff(get(&held)).await,
        Code::Unauthenticated,
        "revoked key",
    );

    // --- streams per tenant -------------------------------------------------
    let watch = |c: &mut Client| {
        let mut c = c.clone();
        let held = held.clone();
        async move { c.watch_handoff(watch_from_start(&held)).await }
    };
    let mut first = watch(&mut acme).await.expect("first watch").into_inner();
    first.next().await.expect("an event").expect("ok");
    let second = watch(&mut acme_desktop).await.expect("second watch");
    assert_code(
        watch(&mut acme).await,
        Code::ResourceExhausted,
        "third watch of acme",
    );
    globex
        .watch_handoff(watch_from_start(&theirs))
        .await
        .expect("another tenant's streams are not affected");
    drop(second);
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(stream) = watch(&mut acme).await {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "a closed stream frees its slot");
    drop((first, reopened));

    // --- context tokens -----------------------------------------------------
    let held_pop = screen_pop_path(&stack, &held).await;
    let done_pop = screen_pop_path(&stack, &done).await;
    seen_tokens.push(token_of(&held_pop));
    seen_tokens.push(token_of(&done_pop));
    let (status, page) = http_get(http, &held_pop).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains(SENSITIVE_ACCOUNT));
    let (refused_status, refused_body) =
        http_get(http, held_pop.split('?').next().expect("path")).await;
    assert_eq!(refused_status, 401);
    let refused_body = refused_body
        .split("\r\n\r\n")
        .nth(1)
        .expect("body")
        .to_owned();
    let expect_refused = |(status, body): (u16, String), what: &str| {
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body.ends_with(&refused_body),
            "{what}: a different answer: {body}"
        );
    };
    // Another handoff's token.
    let held_base = held_pop.split('?').next().expect("path").to_owned();
    expect_refused(
        http_get(http, &format!("{held_base}?token={}", token_of(&done_pop))).await,
        "another handoff's token",
    );
    // Altered tokens: every character changed in turn (a few of them).
    let token = token_of(&held_pop);
    for index in [0, 10, token.len() / 2, token.len() - 1] {
        let mut altered: Vec<char> = token.chars().collect();
        altered[index] = if altered[index] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        expect_refused(
            http_get(http, &format!("{held_base}?token={altered}")).await,
            "an altered token",
        );
    }
    // Replay after expiry: a token signed with the service's own key whose
    // expiry has passed.
    let signer = baton_control::token::TokenSigner::load_or_create(
        &stack.data_dir().join("control/context-token.key"),
    )
    .expect("the service's token key");
    let held_uuid = uuid::Uuid::parse_str(&held).expect("uuid");
    let expired = signer.sign(
        held_uuid,
        baton_control::token::Purpose::ReadContext,
        u32::try_from(now() - 60).expect("fits"),
    );
    let fresh = signer.sign(
        held_uuid,
        baton_control::token::Purpose::ReadContext,
        u32::try_from(now() + 600).expect("fits"),
    );
    seen_tokens.extend([expired.clone(), fresh.clone()]);
    expect_refused(
        http_get(http, &format!("{held_base}?token={expired}")).await,
        "an expired token",
    );
    assert_eq!(
        http_get(http, &format!("{held_base}?token={fresh}"))
            .await
            .0,
        200,
        "the same token unexpired"
    );

    // Reveal: for the desktop, audited.
    let revealed = acme_desktop
        .reveal_entity(reveal(&held, "account_number"))
        .await
        .expect("reveal")
        .into_inner();
    assert_eq!(revealed.value, SENSITIVE_ACCOUNT);
    assert_code(
        acme_desktop.reveal_entity(reveal(&held, "no_such")).await,
        Code::NotFound,
        "unknown entity",
    );

    // Explicit revocation: every token of the handoff stops at once.
    acme.revoke_context_tokens(revoke_tokens(&held))
        .await
        .expect("revoke");
    expect_refused(http_get(http, &held_pop).await, "a revoked token");
    expect_refused(
        http_get(http, &format!("{held_base}?token={fresh}")).await,
        "a revoked handoff's new token",
    );
    // Cancellation: its tokens stop too.
    let cancelled = create(&mut acme, "to-cancel", "hold").await;
    let cancelled_pop = screen_pop_path(&stack, &cancelled).await;
    seen_tokens.push(token_of(&cancelled_pop));
    assert_eq!(http_get(http, &cancelled_pop).await.0, 200);
    acme.cancel_handoff(cancel(&cancelled, "customer hung up"))
        .await
        .expect("cancel");
    expect_refused(
        http_get(http, &cancelled_pop).await,
        "a cancelled handoff's token",
    );

    // The audit log says who did what.
    wait_state(&mut acme, &done, HandoffState::Completed).await;
    let every_record = ListAuditRecordsRequest {
        page_size: 500,
        ..Default::default()
    };
    let records = audit_records(&mut acme_supervisor, every_record).await;
    let has = |handoff: &str, action: AuditAction, actor: &str| {
        records
            .iter()
            .any(|r| r.handoff_id == handoff && r.action() == action && r.actor == actor)
    };
    assert!(
        has(&held, AuditAction::Created, "acme voice bot"),
        "{records:?}"
    );
    assert!(
        has(&held, AuditAction::Viewed, "context-token"),
        "{records:?}"
    );
    assert!(
        has(&held, AuditAction::Revealed, "acme desktop"),
        "{records:?}"
    );
    assert!(
        has(&held, AuditAction::TokensRevoked, "acme voice bot"),
        "{records:?}"
    );
    assert!(
        has(&cancelled, AuditAction::Cancelled, "acme voice bot"),
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.handoff_id != theirs));
    let revealed = records
        .iter()
        .find(|r| r.action() == AuditAction::Revealed)
        .expect("reveal record");
    assert_eq!(revealed.detail, "entity account_number");
    assert!(revealed.credential.starts_with("key:"));
    assert!(
        records
            .iter()
            .all(|r| !r.detail.contains(SENSITIVE_ACCOUNT))
    );

    // --- oversize and injection ---------------------------------------------
    let mut huge = request("huge", queue("agents"));
    huge.context.as_mut().expect("context").summary = "x".repeat(400 * 1024);
    let status = acme.create_handoff(huge).await.expect_err("oversize");
    assert!(
        matches!(
            status.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{status:?}"
    );
    let crlf = "x\r\nVia: SIP/2.0/UDP evil.example\r\nFAKE-LOG-LINE";
    type Edit = fn(&mut CreateHandoffRequest, &str);
    let header_fields: [(&str, Edit); 16] = [
        ("request_id", |r, v| r.request_id = v.into()),
        ("target.sip_uri", |r, v| {
            r.target = Some(pb::Target {
                kind: Some(pb::target::Kind::SipUri(format!("sip:a@b{v}"))),
            })
        }),
        ("target.phone_number", |r, v| {
            r.target = Some(pb::Target {
                kind: Some(pb::target::Kind::PhoneNumber(format!("+1415555{v}"))),
            })
        }),
        ("target.queue.name", |r, v| {
            r.target = Some(pb::Target {
                kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                    name: v.into(),
                    skills: vec![],
                })),
            })
        }),
        ("conversation.call.sip_call_id", |r, v| {
            call(r).sip_call_id = v.into()
        }),
        ("conversation.call.caller_number", |r, v| {
            call(r).caller_number = v.into()
        }),
        ("conversation.call.platform_contact_id", |r, v| {
            call(r).platform_contact_id = v.into()
        }),
        ("context.intent.name", |r, v| {
            context(r).intent.as_mut().expect("intent").name = v.into()
        }),
        ("context.entities[0].name", |r, v| {
            context(r).entities[0].name = v.into()
        }),
        ("context.entities[0].type", |r, v| {
            context(r).entities[0].r#type = v.into()
        }),
        ("conversation.call.sip_from_tag", |r, v| {
            call(r).sip_from_tag = v.into()
        }),
        ("conversation.call.sip_to_tag", |r, v| {
            call(r).sip_to_tag = v.into()
        }),
        ("conversation.call.sip_gateway_uri", |r, v| {
            call(r).sip_gateway_uri = format!("sip:gw@example.com{v}")
        }),
        ("conversation.language", |r, v| {
            r.conversation.as_mut().expect("conversation").language = format!("en{v}")
        }),
        ("target.queue.skills[0]", |r, v| {
            r.target = Some(pb::Target {
                kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                    name: "agents".into(),
                    skills: vec![v.into()],
                })),
            })
        }),
        ("context.entities[1].name", |r, v| {
            context(r).entities[1].name = format!("issue{v}")
        }),
    ];
    for (field, edit) in header_fields {
        let mut bad = request(&format!("inject-{field}"), queue("agents"));
        edit(&mut bad, crlf);
        let status = acme.create_handoff(bad).await.expect_err(field);
        assert!(
            bad_fields(&status).iter().any(|f| f == field),
            "{field}: {status:?}"
        );
    }
    let status = acme
        .cancel_handoff(cancel(&held, crlf))
        .await
        .expect_err("reason");
    assert_eq!(bad_fields(&status), ["reason"]);
    let status = acme_desktop
        .reveal_entity(reveal(&held, crlf))
        .await
        .expect_err("entity_name");
    assert_eq!(bad_fields(&status), ["entity_name"]);
    // Free text reaches the page escaped, and logs without breaking a line.
    let mut html = request("html", queue("hold"));
    let context = html.context.as_mut().expect("context");
    context.summary = format!("<script>alert(1)</script>{crlf}");
    context.agent_notes = "<img src=x onerror=alert(2)>\nFAKE-LOG-LINE".into();
    context.transcript[0].text = "</li><script>alert(3)</script>".into();
    // Free text is accepted.
    let html_id = baton_tests::created_id(acme.create_handoff(html).await);
    let html_pop = screen_pop_path(&stack, &html_id).await;
    seen_tokens.push(token_of(&html_pop));
    let (status, page) = http_get(http, &html_pop).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("<script>") && !page.contains("<img"),
        "markup passed through"
    );
    assert!(page.contains("&lt;script&gt;"));

    // --- logs -----------------------------------------------------------------
    let mut seeded: Vec<&str> = secrets.all();
    seeded.extend(seen_tokens.iter().map(String::as_str));
    seeded.extend([SENSITIVE_ACCOUNT, SENSITIVE_CALLER]);
    assert_logs_clean(&stack, &seeded);
}

#[tokio::test]
async fn a_flooding_tenant_gets_resource_exhausted_with_retry_info_and_others_do_not() {
    let secrets = Secrets::new();
    let stack = start(
        &secrets,
        &[
            ("BATON_RATE_LIMIT__REQUESTS_PER_SECOND", "0.5"),
            ("BATON_RATE_LIMIT__BURST", "5"),
        ],
    )
    .await;
    let mut acme = client(&stack, Some(&secrets.acme_runtime)).await;
    let mut globex = client(&stack, Some(&secrets.globex_runtime)).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let mut limited = None;
    for _ in 0..20 {
        match acme.get_handoff(get(&unknown)).await {
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => {
                limited = Some(status);
                break;
            }
            Ok(_) => panic!("found an unknown handoff"),
        }
    }
    let status = limited.expect("the flood is limited");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status
        .get_details_retry_info()
        .expect("RetryInfo")
        .retry_delay
        .expect("a delay");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(2),
        "{retry:?}"
    );
    assert_code(
        globex.get_handoff(get(&unknown)).await,
        Code::NotFound,
        "another tenant passes",
    );
    baton_tests::wait_serving(&stack.control().endpoint("grpc"))
        .await
        .expect("health is not limited");
    assert_logs_clean(&stack, &secrets.all());
}

#[tokio::test]
async fn retention_deletes_the_context_of_ended_handoffs_and_their_tokens_stop() {
    let secrets = Secrets::new();
    let stack = start(
        &secrets,
        &[
            ("BATON_RETENTION__CONTEXT_TTL", "1s"),
            ("BATON_RETENTION__PURGE_INTERVAL", "1s"),
            ("BATON_HANDOFF__ENDED_TOKEN_GRACE", "1h"),
        ],
    )
    .await;
    let http = stack.control().addr("http");
    let mut acme = client(&stack, Some(&secrets.acme_runtime)).await;
    let mut supervisor = client(&stack, Some(&secrets.acme_supervisor)).await;
    let (id, pop) = completed_handoff(&stack, &mut acme, "retained").await;
    let mut purged = false;
    for _ in 0..300 {
        let records = audit_records(&mut supervisor, audit_of(&id)).await;
        if records
            .iter()
            .any(|r| r.action() == AuditAction::Purged && r.actor == "retention")
        {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(purged, "the purge ran");
    let handoff = acme
        .get_handoff(get(&id))
        .await
        .expect("the record stays")
        .into_inner()
        .handoff
        .expect("handoff");
    assert_eq!(handoff.state(), HandoffState::Completed);
    let context = handoff.context.unwrap_or_default();
    assert!(
        context.summary.is_empty() && context.transcript.is_empty() && context.entities.is_empty()
    );
    assert_eq!(
        http_get(http, &pop).await.0,
        401,
        "a purged handoff's token opens nothing"
    );
}

/// The call of a request's conversation, for the injection table.
fn call(request: &mut CreateHandoffRequest) -> &mut pb::CallReference {
    request
        .conversation
        .as_mut()
        .expect("conversation")
        .call
        .as_mut()
        .expect("call")
}

/// A request's context, for the injection table.
fn context(request: &mut CreateHandoffRequest) -> &mut pb::HandoffContext {
    request.context.as_mut().expect("context")
}

/// Opens a connection to `address` that sends half a request head and then
/// nothing, as a slowloris client does.
async fn slow_client(address: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    stream
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close is fine: read on.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_bounded_in_number() {
    let secrets = Secrets::new();
    let stack = start(
        &secrets,
        &[
            ("BATON_SERVER__HTTP__MAX_CONNECTIONS", "8"),
            ("BATON_SERVER__HTTP__HEADER_READ_TIMEOUT", "1s"),
            ("BATON_SERVER__GRPC__MAX_CONNECTIONS", "2"),
        ],
    )
    .await;
    let http = stack.control().addr("http");

    // Nine slow clients on a listener that takes eight: every one is closed
    // (the ninth once a slot frees), none held for long.
    let mut slow = Vec::new();
    for _ in 0..9 {
        slow.push(slow_client(http).await);
    }
    for (i, stream) in slow.iter_mut().enumerate() {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "slow connection {i} is still open"
        );
    }
    let (status, _) = http_get(http, "/healthz").await;
    assert_eq!(status, 200, "the listener serves again");

    // gRPC: two silent connections take both slots; a call waits until one
    // of them goes.
    let grpc = stack.control().addr("grpc");
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(tokio::net::TcpStream::connect(grpc).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let endpoint = stack.control().endpoint("grpc");
    let call = async {
        let channel = Channel::from_shared(endpoint.clone())
            .expect("endpoint")
            .connect()
            .await?;
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .map_err(Into::<Box<dyn std::error::Error + Send + Sync>>::into)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    let blocked = tokio::time::timeout(Duration::from_secs(1), call).await;
    assert!(
        !matches!(blocked, Ok(Ok(()))),
        "a third connection was served beyond max_connections"
    );
    drop(silent.pop());
    baton_tests::wait_serving(&endpoint)
        .await
        .expect("served once a slot is free");
    assert_logs_clean(&stack, &secrets.all());
}

/// The `(status, headers and body)` of a context read with `token`.
async fn read_context(http: std::net::SocketAddr, id: &str, token: &str) -> (u16, String) {
    http_get(http, &format!("/v1/handoffs/{id}/context?token={token}")).await
}

#[tokio::test]
async fn context_reads_are_rate_limited_collapsed_in_the_audit_log_and_end_after_the_grace() {
    let secrets = Secrets::new();
    let stack = start(
        &secrets,
        &[
            ("BATON_CONTEXT_READS__BURST", "30"),
            ("BATON_CONTEXT_READS__PER_MINUTE", "1"),
            ("BATON_FAILED_AUTH__BURST", "5"),
            ("BATON_FAILED_AUTH__PER_MINUTE", "1"),
            ("BATON_HANDOFF__ENDED_TOKEN_GRACE", "3s"),
            ("BATON_METRICS__LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let http = stack.control().addr("http");
    let mut acme = client(&stack, Some(&secrets.acme_runtime)).await;
    let mut supervisor = client(&stack, Some(&secrets.acme_supervisor)).await;
    let unconfigured_queue = format!("tenant-secret-{}", uuid::Uuid::now_v7().simple());
    let (id, pop) = completed_handoff(&stack, &mut acme, "reads").await;
    let token = token_of(&pop);
    let ended = std::time::Instant::now();

    // 200 reads: the burst passes, the rest get 429 with Retry-After.
    let (mut ok, mut limited) = (0u64, 0u64);
    for _ in 0..200 {
        let (status, response) = read_context(http, &id, &token).await;
        match status {
            200 => ok += 1,
            429 => {
                assert!(
                    response.to_ascii_lowercase().contains("retry-after:"),
                    "{response}"
                );
                limited += 1;
            }
            other => panic!("unexpected {other}: {response}"),
        }
    }
    assert!(
        (30..=32).contains(&ok) && ok + limited == 200,
        "{ok} read, {limited} limited"
    );
    let views: Vec<AuditRecord> = audit_records(&mut supervisor, audit_of(&id))
        .await
        .into_iter()
        .filter(|r| r.action() == AuditAction::Viewed)
        .collect();
    assert_eq!(views.len(), 1, "one record for every read: {views:?}");
    assert_eq!(views[0].count, ok, "{views:?}");
    assert!(views[0].last_time.is_some(), "{views:?}");

    // After the grace the token opens nothing (the handoff ended above).
    let grace = Duration::from_secs(3);
    tokio::time::sleep(grace.saturating_sub(ended.elapsed()) + Duration::from_millis(700)).await;
    let (other, other_pop) = completed_handoff(&stack, &mut acme, "reads-2").await;
    let other_token = token_of(&other_pop);
    assert_eq!(
        read_context(http, &other, &other_token).await.0,
        200,
        "within the grace"
    );
    tokio::time::sleep(grace + Duration::from_millis(700)).await;
    assert_eq!(
        read_context(http, &other, &other_token).await.0,
        401,
        "after the grace"
    );

    // Failed authentication from one address: a few refusals, then
    // RESOURCE_EXHAUSTED / 429; a valid credential from it still passes.
    let mut anonymous = client(&stack, Some("bk_nope_nope")).await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(
            anonymous
                .get_handoff(get(&id))
                .await
                .expect_err("refused")
                .code(),
        );
    }
    // A valid token refused after the grace was no failed authentication.
    assert!(
        codes[..5].iter().all(|c| *c == Code::Unauthenticated),
        "{codes:?}"
    );
    assert!(
        codes[5..].iter().all(|c| *c == Code::ResourceExhausted),
        "{codes:?}"
    );
    let status = anonymous.get_handoff(get(&id)).await.expect_err("refused");
    assert!(status.get_details_retry_info().is_some(), "{status:?}");
    let (status, response) = read_context(http, &id, "forged").await;
    assert_eq!(status, 429, "{response}");
    acme.get_handoff(get(&id))
        .await
        .expect("a valid credential is not limited");

    // Metrics on their own listener only, labels bounded and tenant-free.
    assert_eq!(http_get(http, "/metrics").await.0, 404);
    acme.create_handoff(request("unconfigured-queue", queue(&unconfigured_queue)))
        .await
        .expect("create");
    let metrics = stack.control().addr("metrics");
    let mut scraped = String::new();
    for _ in 0..100 {
        let (status, body) = http_get(metrics, "/metrics").await;
        assert_eq!(status, 200);
        scraped = body;
        if scraped.contains("route=\"queue:other\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(scraped.contains("route=\"queue:other\""), "{scraped}");
    assert!(
        !scraped.contains(&unconfigured_queue),
        "a caller's queue name is a label"
    );
    for tenant in ["acme", "globex"] {
        assert!(
            !scraped.contains(&format!("\"{tenant}\"")),
            "tenant {tenant} in a label"
        );
    }
    assert_logs_clean(&stack, &secrets.all());
}
