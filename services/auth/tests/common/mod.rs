//! What the layer tests share: a real tonic server on loopback behind the
//! auth and rate limit layers, the credentials files, and a client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_auth::api_key::{self, KeysFile, MintedKey};
use baton_auth::jwt::JwtConfig;
use baton_auth::{
    AuthConfig, AuthLayer, AuthMode, Principal, RateLimitConfig, RateLimitLayer, Role,
    StreamLimiter,
};
use baton_proto::handoff::v1 as pb;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::handoff_service_server::{HandoffService, HandoffServiceServer};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

pub const HS256_SECRET: &str = "the HS256 secret shared with the identity provider";

/// A `HandoffService` that answers with who called: the principal the auth
/// layer inserted, in response metadata. Fails the call when there is none,
/// so that a layer that lets a call through without one is caught.
pub struct WhoCalled {
    pub streams: StreamLimiter,
}

pub fn who<T>(request: &Request<T>) -> Result<Response<()>, Status> {
    let principal =
        Principal::of(request).ok_or_else(|| Status::internal("no principal in the request"))?;
    let mut response = Response::new(());
    let metadata = response.metadata_mut();
    metadata.insert(
        "x-tenant",
        principal
            .tenant
            .parse()
            .map_err(|_| Status::internal("tenant"))?,
    );
    metadata.insert(
        "x-credential",
        principal
            .credential_id
            .parse()
            .map_err(|_| Status::internal("credential"))?,
    );
    Ok(response)
}

pub fn answer<T, M>(request: &Request<T>, message: M) -> Result<Response<M>, Status> {
    let (metadata, _, extensions) = who(request)?.into_parts();
    Ok(Response::from_parts(metadata, message, extensions))
}

pub type WatchStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::WatchHandoffResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl HandoffService for WhoCalled {
    async fn create_handoff(
        &self,
        request: Request<pb::CreateHandoffRequest>,
    ) -> Result<Response<pb::CreateHandoffResponse>, Status> {
        answer(&request, pb::CreateHandoffResponse::default())
    }
    async fn get_handoff(
        &self,
        request: Request<pb::GetHandoffRequest>,
    ) -> Result<Response<pb::GetHandoffResponse>, Status> {
        answer(&request, pb::GetHandoffResponse::default())
    }
    async fn list_handoffs(
        &self,
        request: Request<pb::ListHandoffsRequest>,
    ) -> Result<Response<pb::ListHandoffsResponse>, Status> {
        answer(&request, pb::ListHandoffsResponse::default())
    }
    async fn cancel_handoff(
        &self,
        request: Request<pb::CancelHandoffRequest>,
    ) -> Result<Response<pb::CancelHandoffResponse>, Status> {
        answer(&request, pb::CancelHandoffResponse::default())
    }
    type WatchHandoffStream = WatchStream;

    type ConverseHandoffStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ConverseHandoffResponse, Status>> + Send>,
    >;

    async fn converse_handoff(
        &self,
        _request: Request<tonic::Streaming<pb::ConverseHandoffRequest>>,
    ) -> Result<Response<Self::ConverseHandoffStream>, Status> {
        Err(Status::unimplemented("not used by these tests"))
    }
    /// Sends one (empty) event, then holds the stream open, and its slot,
    /// until the client goes away.
    async fn watch_handoff(
        &self,
        request: Request<pb::WatchHandoffRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let tenant = Principal::of(&request)
            .ok_or_else(|| Status::internal("no principal in the request"))?
            .tenant
            .clone();
        let permit = self.streams.try_acquire(&tenant)?;
        let events = tokio_stream::once(Ok(pb::WatchHandoffResponse::default())).chain(
            futures::stream::unfold(permit, |permit| async move {
                futures::future::pending::<()>().await;
                drop(permit);
                None
            }),
        );
        answer(&request, Box::pin(events) as WatchStream)
    }
    async fn evaluate_escalation(
        &self,
        request: Request<pb::EvaluateEscalationRequest>,
    ) -> Result<Response<pb::EvaluateEscalationResponse>, Status> {
        answer(&request, pb::EvaluateEscalationResponse::default())
    }
    async fn reveal_entity(
        &self,
        request: Request<pb::RevealEntityRequest>,
    ) -> Result<Response<pb::RevealEntityResponse>, Status> {
        answer(&request, pb::RevealEntityResponse::default())
    }
    async fn revoke_context_tokens(
        &self,
        request: Request<pb::RevokeContextTokensRequest>,
    ) -> Result<Response<pb::RevokeContextTokensResponse>, Status> {
        answer(&request, pb::RevokeContextTokensResponse::default())
    }
    async fn list_audit_records(
        &self,
        request: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        answer(&request, pb::ListAuditRecordsResponse::default())
    }
    async fn update_handoff(
        &self,
        request: Request<pb::UpdateHandoffRequest>,
    ) -> Result<Response<pb::UpdateHandoffResponse>, Status> {
        answer(&request, pb::UpdateHandoffResponse::default())
    }
    async fn check_availability(
        &self,
        request: Request<pb::CheckAvailabilityRequest>,
    ) -> Result<Response<pb::CheckAvailabilityResponse>, Status> {
        answer(&request, pb::CheckAvailabilityResponse::default())
    }
    async fn record_outcome(
        &self,
        request: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        answer(&request, pb::RecordOutcomeResponse::default())
    }
    async fn get_outcome_metrics(
        &self,
        request: Request<pb::GetOutcomeMetricsRequest>,
    ) -> Result<Response<pb::GetOutcomeMetricsResponse>, Status> {
        answer(&request, pb::GetOutcomeMetricsResponse::default())
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The credentials' files, and the keys to sign tokens with.
pub struct Credentials {
    pub dir: tempfile::TempDir,
    pub keys_file: PathBuf,
    pub es256: EncodingKey,
}

impl Credentials {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let es256 = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&es256, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some("idp-key-1".into());
        let jwks = JwkSet { keys: vec![jwk] };
        std::fs::write(
            dir.path().join("jwks.json"),
            serde_json::to_vec(&jwks).expect("json"),
        )
        .expect("write");
        std::fs::write(dir.path().join("hs256.secret"), HS256_SECRET).expect("write");
        let keys_file = dir.path().join("keys.toml");
        KeysFile::default().write(&keys_file).expect("write");
        Self {
            dir,
            keys_file,
            es256,
        }
    }

    pub fn config(&self) -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Required,
            api_keys_file: Some(self.keys_file.clone()),
            jwt: Some(JwtConfig {
                hs256_secret_file: Some(self.dir.path().join("hs256.secret")),
                jwks_file: Some(self.dir.path().join("jwks.json")),
                issuer: Some("https://idp.test".into()),
                audience: Some("baton".into()),
                ..JwtConfig::default()
            }),
            ..AuthConfig::default()
        }
    }

    pub fn add_key(&self, tenant: &str, roles: &[Role]) -> MintedKey {
        let minted = api_key::mint(tenant, roles, None, None).expect("mints");
        KeysFile::add_to(&self.keys_file, minted.entry.clone()).expect("adds");
        minted
    }

    pub fn es256_token(&self, kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &self.es256).expect("signs")
    }
}

pub fn hs256_token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

pub fn claims(overrides: Value) -> Value {
    let mut claims = json!({
        "sub": "voice-bot",
        "tenant": "acme",
        "roles": ["ai_runtime"],
        "iss": "https://idp.test",
        "aud": "baton",
        "exp": now() + 600,
    });
    if let (Some(claims), Value::Object(overrides)) = (claims.as_object_mut(), overrides) {
        claims.extend(overrides);
    }
    claims
}

pub struct Server {
    pub channel: Channel,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(auth: AuthLayer, rate: RateLimitConfig, streams: StreamLimiter) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let router = tonic::transport::Server::builder()
            .layer(auth)
            .layer(RateLimitLayer::new(&rate).expect("rate limit"))
            .add_service(health)
            .add_service(HandoffServiceServer::new(WhoCalled { streams }));
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(baton_service_kit::grpc::incoming(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("serves");
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connects");
        Server {
            channel,
            shutdown: Some(shutdown),
            task,
        }
    }

    pub fn client(&self) -> HandoffServiceClient<Channel> {
        HandoffServiceClient::new(self.channel.clone())
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        drop(self.channel);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stops in time")
            .expect("server task");
    }
}

pub fn with(header: &'static str, value: &str) -> Request<pb::GetHandoffRequest> {
    let mut request = Request::new(pb::GetHandoffRequest::default());
    request
        .metadata_mut()
        .insert(header, value.parse().expect("ascii"));
    request
}

pub fn bearer(credential: &str) -> Request<pb::GetHandoffRequest> {
    with("authorization", &format!("Bearer {credential}"))
}

/// Calls GetHandoff; the tenant the server saw, or the refusal.
pub async fn get(
    server: &Server,
    request: Request<pb::GetHandoffRequest>,
) -> Result<String, Status> {
    let response = server.client().get_handoff(request).await?;
    Ok(response
        .metadata()
        .get("x-tenant")
        .expect("x-tenant")
        .to_str()
        .expect("ascii")
        .to_string())
}

pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

pub fn assert_refused(
    result: Result<String, Status>,
    code: Code,
    expected_reason: &str,
    case: &str,
) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert_eq!(reason(&status), expected_reason, "{case}");
}

pub async fn start(credentials: &Credentials) -> Server {
    Server::start(
        AuthLayer::from_config(&credentials.config()).expect("auth layer"),
        RateLimitConfig::default(),
        StreamLimiter::new(10),
    )
    .await
}

/// The key with one character of its secret changed.
pub fn tampered(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let at = chars.len() - 10;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

pub fn write_file(path: &Path, contents: &str) {
    let aside = path.with_extension("aside");
    std::fs::write(&aside, contents).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}
