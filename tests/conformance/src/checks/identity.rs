//! Identity and the standard services: GetConnectorInfo is complete and
//! stable, `grpc.health.v1` reports serving, reflection describes the
//! connector service.

use std::collections::HashSet;

use baton_proto::connector::v1::{ContextMechanism, GetConnectorInfoResponse};
use baton_proto::types::v1::{TargetKind, TransferMode};
use tokio::time::timeout;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::Session;
use crate::client::CALL_TIMEOUT;
use crate::report::Outcome;

pub const CONNECTOR_SERVICE: &str = "baton.connector.v1.ConnectorService";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

pub async fn run(session: &mut Session) {
    session.check("identity.info", info).await;
    session
        .check("health.serving", async |s: &mut Session| {
            health(s, "").await
        })
        .await;
    session
        .check(
            "health.connector_service_serving",
            async |s: &mut Session| health(s, CONNECTOR_SERVICE).await,
        )
        .await;
    session
        .check("reflection.services_listed", reflection_lists)
        .await;
    session
        .check(
            "reflection.connector_service_described",
            reflection_describes,
        )
        .await;
}

/// The problems of a GetConnectorInfo answer; empty when it is complete.
pub fn info_problems(info: &GetConnectorInfoResponse) -> Vec<String> {
    let mut problems = Vec::new();
    if info.name.trim().is_empty() {
        problems.push("name is empty".to_string());
    }
    if !is_semver(&info.version) {
        problems.push(format!("version {:?} is not semver", info.version));
    }
    if info.target_kinds.is_empty() {
        problems.push("no target kinds".into());
    }
    if info.transfer_modes.is_empty() {
        problems.push("no transfer modes".into());
    }
    let mut seen = HashSet::new();
    for kind in &info.target_kinds {
        match TargetKind::try_from(*kind) {
            Ok(TargetKind::Unspecified) | Err(_) => {
                problems.push(format!("target kind {kind} is unspecified or unknown"))
            }
            _ => {}
        }
        if !seen.insert(("kind", *kind)) {
            problems.push(format!("target kind {kind} listed twice"));
        }
    }
    for mode in &info.transfer_modes {
        match TransferMode::try_from(*mode) {
            Ok(TransferMode::Unspecified) | Err(_) => {
                problems.push(format!("transfer mode {mode} is unspecified or unknown"))
            }
            _ => {}
        }
        if !seen.insert(("mode", *mode)) {
            problems.push(format!("transfer mode {mode} listed twice"));
        }
    }
    for capability in &info.context_capabilities {
        match ContextMechanism::try_from(capability.mechanism) {
            Ok(ContextMechanism::Unspecified) | Err(_) => problems.push(format!(
                "context mechanism {} is unspecified or unknown",
                capability.mechanism
            )),
            _ => {}
        }
        if !seen.insert(("mechanism", capability.mechanism)) {
            problems.push(format!(
                "context mechanism {} listed twice",
                capability.mechanism
            ));
        }
    }
    problems
}

/// MAJOR.MINOR.PATCH, with an optional `-pre` and `+build`.
pub fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

async fn info(session: &mut Session) -> Outcome {
    let problems = info_problems(&session.info);
    if !problems.is_empty() {
        return Outcome::Fail(problems.join("; "));
    }
    match session.client.info().await {
        Ok(again) if again == session.info => {}
        Ok(_) => return Outcome::Fail("a second GetConnectorInfo answered differently".into()),
        Err(status) => {
            return Outcome::Fail(format!(
                "a second GetConnectorInfo failed: {:?}",
                status.code()
            ));
        }
    }
    let names = |values: &[i32], name: fn(i32) -> Option<&'static str>| {
        values
            .iter()
            .filter_map(|v| name(*v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Outcome::Pass(format!(
        "{} {}: kinds {}; modes {}; context {}",
        session.info.name,
        session.info.version,
        names(&session.info.target_kinds, |v| {
            TargetKind::try_from(v).ok().map(|k| k.as_str_name())
        }),
        names(&session.info.transfer_modes, |v| {
            TransferMode::try_from(v).ok().map(|m| m.as_str_name())
        }),
        session
            .info
            .context_capabilities
            .iter()
            .map(|c| format!(
                "{}≤{}",
                ContextMechanism::try_from(c.mechanism)
                    .map(|m| m.as_str_name())
                    .unwrap_or("?"),
                c.max_bytes
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

async fn health(session: &mut Session, service: &str) -> Outcome {
    let mut client = HealthClient::new(session.client.channel.clone());
    let request = HealthCheckRequest {
        service: service.into(),
    };
    match timeout(CALL_TIMEOUT, client.check(request)).await {
        Err(_) => Outcome::Fail(format!("Health/Check({service:?}) did not answer")),
        Ok(Err(status)) => Outcome::Fail(format!(
            "Health/Check({service:?}): {:?} {}",
            status.code(),
            status.message()
        )),
        // 1: SERVING.
        Ok(Ok(response)) if response.get_ref().status == 1 => {
            Outcome::Pass(format!("Check({service:?}) is SERVING"))
        }
        Ok(Ok(response)) => Outcome::Fail(format!(
            "Check({service:?}) status is {} instead of SERVING",
            response.get_ref().status
        )),
    }
}

/// What reflection said: the services listed, and the methods of the
/// connector service from its file descriptor.
#[derive(Debug, Default)]
struct Reflected {
    version: &'static str,
    services: Vec<String>,
    methods: Vec<String>,
}

/// The same conversation with reflection v1 or v1alpha (their messages are
/// alike, their packages differ): grpcio's Python reflection serves only
/// v1alpha, tonic serves both.
macro_rules! reflect {
    ($module:path, $version:literal, $channel:expr) => {{
        use prost::Message as _;
        use $module as pb;
        async {
            let mut client =
                pb::server_reflection_client::ServerReflectionClient::new($channel.clone());
            let requests = [
                pb::server_reflection_request::MessageRequest::ListServices(String::new()),
                pb::server_reflection_request::MessageRequest::FileContainingSymbol(
                    CONNECTOR_SERVICE.into(),
                ),
            ]
            .map(|message| pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(message),
            });
            let mut responses = client
                .server_reflection_info(tokio_stream::iter(requests))
                .await?
                .into_inner();
            let mut reflected = Reflected {
                version: $version,
                ..Default::default()
            };
            for _ in 0..2 {
                let Some(response) = responses.message().await? else {
                    break;
                };
                match response.message_response {
                    Some(
                        pb::server_reflection_response::MessageResponse::ListServicesResponse(list),
                    ) => reflected.services = list.service.into_iter().map(|s| s.name).collect(),
                    Some(
                        pb::server_reflection_response::MessageResponse::FileDescriptorResponse(
                            files,
                        ),
                    ) => {
                        for bytes in files.file_descriptor_proto {
                            let Ok(file) =
                                prost_types::FileDescriptorProto::decode(bytes.as_slice())
                            else {
                                continue;
                            };
                            if file.package() != "baton.connector.v1" {
                                continue;
                            }
                            for service in &file.service {
                                if service.name() == "ConnectorService" {
                                    reflected.methods = service
                                        .method
                                        .iter()
                                        .map(|m| m.name().to_owned())
                                        .collect();
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok::<Reflected, tonic::Status>(reflected)
        }
    }};
}

async fn reflected(session: &Session) -> Result<Reflected, String> {
    let channel = &session.client.channel;
    let v1 = timeout(
        CALL_TIMEOUT,
        reflect!(tonic_reflection::pb::v1, "v1", channel),
    )
    .await;
    match v1 {
        Ok(Ok(reflected)) => return Ok(reflected),
        Ok(Err(status)) if status.code() != tonic::Code::Unimplemented => {
            return Err(format!(
                "reflection v1: {:?} {}",
                status.code(),
                status.message()
            ));
        }
        _ => {}
    }
    match timeout(
        CALL_TIMEOUT,
        reflect!(tonic_reflection::pb::v1alpha, "v1alpha", channel),
    )
    .await
    {
        Ok(Ok(reflected)) => Ok(reflected),
        Ok(Err(status)) => Err(format!(
            "reflection is not served (v1 nor v1alpha): {:?} {}",
            status.code(),
            status.message()
        )),
        Err(_) => Err("reflection did not answer".into()),
    }
}

async fn reflection_lists(session: &mut Session) -> Outcome {
    match reflected(session).await {
        Err(error) => Outcome::Fail(error),
        Ok(reflected) => {
            let missing: Vec<&str> = [CONNECTOR_SERVICE, HEALTH_SERVICE]
                .into_iter()
                .filter(|s| !reflected.services.iter().any(|listed| listed == s))
                .collect();
            if missing.is_empty() {
                Outcome::Pass(format!(
                    "reflection {} lists {}",
                    reflected.version,
                    reflected.services.join(", ")
                ))
            } else {
                Outcome::Fail(format!(
                    "reflection {} does not list {}; it lists {:?}",
                    reflected.version,
                    missing.join(", "),
                    reflected.services
                ))
            }
        }
    }
}

async fn reflection_describes(session: &mut Session) -> Outcome {
    match reflected(session).await {
        Err(error) => Outcome::Fail(error),
        Ok(reflected) => {
            let expected = ["GetConnectorInfo", "StartTransfer", "CancelTransfer"];
            if expected
                .iter()
                .all(|m| reflected.methods.iter().any(|listed| listed == m))
            {
                Outcome::Pass(format!(
                    "{CONNECTOR_SERVICE} has {}",
                    reflected.methods.join(", ")
                ))
            } else {
                Outcome::Fail(format!(
                    "the file descriptor of {CONNECTOR_SERVICE} names methods {:?}",
                    reflected.methods
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_proto::connector::v1::ContextCapability;

    #[test]
    fn semver() {
        for good in ["0.1.0", "1.2.3-rc.1", "10.0.0+build.5"] {
            assert!(is_semver(good), "{good}");
        }
        for bad in ["", "1", "1.2", "v1.2.3", "1.2.x", "1..3"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn incomplete_info_is_named() {
        let info = GetConnectorInfoResponse {
            name: String::new(),
            version: "one".into(),
            target_kinds: vec![0, TargetKind::Queue as i32, TargetKind::Queue as i32],
            transfer_modes: vec![],
            context_capabilities: vec![ContextCapability {
                mechanism: 0,
                max_bytes: 0,
            }],
            ..Default::default()
        };
        let problems = info_problems(&info).join("; ");
        for expected in [
            "name is empty",
            "not semver",
            "no transfer modes",
            "target kind 0",
            "listed twice",
            "context mechanism 0",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
        let good = GetConnectorInfoResponse {
            name: "q".into(),
            version: "0.1.0".into(),
            target_kinds: vec![TargetKind::Queue as i32],
            transfer_modes: vec![TransferMode::Warm as i32],
            context_capabilities: vec![],
            ..Default::default()
        };
        assert!(info_problems(&good).is_empty());
    }
}
