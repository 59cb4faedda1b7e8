//! `baton-connector-amazon-connect`: the Amazon Connect connector as a
//! process.

fn main() -> std::process::ExitCode {
    baton_connector_sdk::run::<baton_connector_amazon_connect::ConnectConfig>()
}
