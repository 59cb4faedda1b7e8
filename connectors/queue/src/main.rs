//! `baton-connector-queue`: the embedded contact-center queue and agent
//! desktop.

fn main() -> std::process::ExitCode {
    baton_connector_sdk::run::<baton_connector_queue::QueueConfig>()
}
