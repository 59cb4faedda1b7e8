//! The control service's API keys as the tests use them: minted with
//! `baton auth new-key`, sent as a bearer token on every call.

use std::path::Path;

use baton_proto::bearer::BearerCredential;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::Service;

/// A handoff client that presents a bearer credential.
pub type Client = HandoffServiceClient<InterceptedService<Channel, BearerCredential>>;

/// A client of `control`'s gRPC API presenting `credential` (an API key
/// or a JWT), or nothing.
pub async fn client(control: &Service, credential: Option<&str>) -> Client {
    let channel = Channel::from_shared(control.endpoint("grpc"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to control");
    let bearer = BearerCredential::new(credential).expect("a valid credential");
    HandoffServiceClient::with_interceptor(channel, bearer)
}

/// A new API key of `tenant` with `roles`, called `name`, added to
/// `keys_file` by `baton auth new-key`; the key.
pub fn new_key(keys_file: &Path, tenant: &str, roles: &[&str], name: &str) -> String {
    let mut command = std::process::Command::new(crate::binary("baton"));
    command
        .args(["auth", "new-key", "--keys-file"])
        .arg(keys_file)
        .args(["--tenant", tenant, "--name", name]);
    for role in roles {
        command.args(["--role", role]);
    }
    let output = command.output().expect("baton runs");
    assert!(
        output.status.success(),
        "baton auth new-key: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert!(key.starts_with("bk_"), "{key}");
    key
}
