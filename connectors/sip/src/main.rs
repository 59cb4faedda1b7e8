//! `baton-connector-sip`: the SIP connector as a process.

fn main() -> std::process::ExitCode {
    baton_connector_sdk::run::<baton_connector_sip::SipConfig>()
}
