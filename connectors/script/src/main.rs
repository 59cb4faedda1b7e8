//! `baton-connector-script`: a connector that plays scripted events.

fn main() -> std::process::ExitCode {
    baton_connector_sdk::run::<baton_connector_script::ScriptConfig>()
}
