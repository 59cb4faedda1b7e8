//! `baton config check|example`: the same loading and validation the
//! services run at start, without starting them.

use std::path::PathBuf;

use baton_connector_sdk::run::check_file;
use baton_service_kit::config::load;

use crate::exit;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Component {
    Control,
    Queue,
    Sip,
    Script,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Load FILE as the component would (defaults, file, environment) and
    /// validate it. Exit 0 when valid; 4 with the offending key otherwise.
    Check {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "control")]
        component: Component,
    },
    /// Print a fully commented reference configuration of the control service.
    Example,
}

fn check(file: &std::path::Path, component: Component) -> Result<(), String> {
    match component {
        Component::Control => {
            let config: baton_control::ControlConfig =
                load(Some(file), "BATON").map_err(|e| e.to_string())?;
            baton_control::check(&config).map(|_| ())
        }
        // Connectors load and check as their binaries do (the SDK's runner),
        // older top-level keys included.
        Component::Queue => check_file::<baton_connector_queue::QueueConfig>(file),
        Component::Sip => check_file::<baton_connector_sip::SipConfig>(file),
        Component::Script => check_file::<baton_connector_script::ScriptConfig>(file),
    }
}

pub fn run(command: ConfigCommand) -> u8 {
    match command {
        ConfigCommand::Example => {
            print!("{}", baton_control::config::EXAMPLE);
            exit::OK
        }
        ConfigCommand::Check { file, component } => {
            // Called from the async main: the control service's check builds
            // lazy gRPC clients, which need the runtime, though nothing is dialled.
            match check(&file, component) {
                Ok(()) => {
                    println!("{}: valid {component:?} configuration", file.display());
                    exit::OK
                }
                Err(error) => {
                    eprintln!("{}: {error}", file.display());
                    exit::REJECTED
                }
            }
        }
    }
}
