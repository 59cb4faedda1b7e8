//! `baton config check|example`: the same loading and validation the
//! services run at start, without starting them.

use std::path::PathBuf;

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
    let file = Some(file);
    match component {
        Component::Control => {
            let config: baton_control::ControlConfig =
                load(file, "BATON").map_err(|e| e.to_string())?;
            baton_control::check(&config).map(|_| ())
        }
        Component::Queue => {
            let config: baton_connector_queue::QueueConfig =
                load(file, "BATON_QUEUE").map_err(|e| e.to_string())?;
            config.validate()
        }
        Component::Sip => {
            let config: baton_connector_sip::SipConfig =
                load(file, "BATON_SIP").map_err(|e| e.to_string())?;
            config.validate()
        }
        Component::Script => {
            let config: baton_connector_script::ScriptConfig =
                load(file, "BATON_SCRIPT").map_err(|e| e.to_string())?;
            baton_connector_script::ScriptConnector::new(&config).map(|_| ())
        }
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
