//! `baton health`: asks any Baton service (the control service or a
//! connector) over grpc.health.v1 whether it serves, as a probe does; the
//! chart's `helm test` pod runs it against every component.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::exit;
use crate::handoff::{Connection, channel};

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The service to ask about (e.g. baton.handoff.v1.HandoffService);
    /// empty asks about the whole server.
    #[arg(long, default_value = "")]
    service: String,
    #[command(flatten)]
    connection: Connection,
}

/// Exit code 0 when the service answers SERVING, 5 otherwise.
pub async fn run(args: HealthArgs) -> u8 {
    let endpoint = args.connection.endpoint().to_owned();
    let mut client = match channel(&args.connection).await {
        Ok(channel) => HealthClient::new(channel),
        Err(failure) => {
            eprintln!("baton health: {endpoint}: {}", failure.message);
            return failure.code;
        }
    };
    let request = HealthCheckRequest {
        service: args.service,
    };
    match client.check(request).await {
        Ok(reply) => {
            let status = reply.into_inner().status();
            println!("{endpoint}: {}", status.as_str_name());
            if status == ServingStatus::Serving {
                exit::OK
            } else {
                exit::UNAVAILABLE
            }
        }
        Err(status) => {
            eprintln!("baton health: {endpoint}: {}", status.message());
            exit::UNAVAILABLE
        }
    }
}
