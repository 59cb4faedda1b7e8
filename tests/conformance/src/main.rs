//! `baton-conformance`: checks a connector against the baton.connector.v1
//! contract and prints one line per check.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use baton_conformance::{Expectation, Launched, Profile, Subject, run};
use clap::Parser;

/// Checks a Baton connector against the baton.connector.v1 contract:
/// identity, capabilities (both directions), invalid requests, context
/// limits, idempotent StartTransfer, cancels, deadlines, event order,
/// health, reflection and (with --launch) shutdown. Exit status 1 when a
/// check fails, 2 on bad usage.
#[derive(Debug, Parser)]
#[command(name = "baton-conformance", version)]
struct Args {
    /// The connector's gRPC address, e.g. 127.0.0.1:50061 or http://host:port.
    #[arg(conflicts_with = "launch", required_unless_present = "launch")]
    address: Option<String>,
    /// Start the connector with this command (the rest of the command line, so put it last), read its
    /// address from its JSON ready line and check that SIGTERM drains.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "COMMAND")]
    launch: Vec<String>,
    /// Where the launched connector's stderr (its logs) goes; default: here.
    #[arg(long, value_name = "FILE", requires = "launch")]
    launch_log: Option<PathBuf>,
    /// A TOML profile: sample targets and timings (see connectors/README.md).
    #[arg(long, short)]
    profile: Option<PathBuf>,
    /// A sample target whose transfers connect, as KIND:VALUE
    /// (queue:support, phone_number:+15551234, sip_uri:sip:a@host).
    #[arg(long, value_name = "KIND:VALUE")]
    connects: Vec<String>,
    /// A sample target whose transfers fail.
    #[arg(long, value_name = "KIND:VALUE")]
    fails: Vec<String>,
    /// A sample target whose transfers hold until cancelled (rings forever).
    #[arg(long, value_name = "KIND:VALUE")]
    holds: Vec<String>,
    /// Check ids (or prefixes such as `shutdown`) to skip.
    #[arg(long, value_name = "CHECK")]
    skip: Vec<String>,
    /// How long a transfer that should end may take (overrides the profile).
    #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration)]
    transfer_timeout: Option<Duration>,
    /// A tenant the connector is configured not to serve (it is dedicated
    /// to others, `conformance` among them): its transfers must be refused.
    /// Without it the connector must be shared by every tenant.
    #[arg(long, value_name = "TENANT")]
    foreign_tenant: Option<String>,
    /// Write the report as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

fn profile(args: &Args) -> Result<Profile, String> {
    let mut profile = match &args.profile {
        Some(path) => Profile::load(path)?,
        None => Profile::default(),
    };
    for (samples, expect) in [
        (&args.connects, Expectation::Connects),
        (&args.fails, Expectation::Fails),
        (&args.holds, Expectation::Holds),
    ] {
        for sample in samples {
            profile.targets.push(Profile::parse_sample(sample, expect)?);
        }
    }
    profile.skip.extend(args.skip.iter().cloned());
    if let Some(tenant) = &args.foreign_tenant {
        profile.foreign_tenant = Some(tenant.clone());
    }
    if let Some(timeout) = args.transfer_timeout {
        profile.transfer_timeout = timeout;
    }
    Ok(profile)
}

fn endpoint(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let profile = match profile(&args) {
        Ok(profile) => profile,
        Err(error) => {
            eprintln!("baton-conformance: {error}");
            return ExitCode::from(2);
        }
    };
    let subject = if args.launch.is_empty() {
        Subject::Address(endpoint(args.address.as_deref().unwrap_or_default()))
    } else {
        match Launched::start(&args.launch, args.launch_log.as_deref()).await {
            Ok(launched) => Subject::Launched(Box::new(launched)),
            Err(error) => {
                eprintln!("baton-conformance: {error:#}");
                return ExitCode::from(2);
            }
        }
    };
    let report = run(subject, &profile).await;
    print!("{}", report.render_text());
    if let Some(path) = &args.junit
        && let Err(error) = std::fs::write(path, report.to_junit_xml())
    {
        eprintln!(
            "baton-conformance: cannot write {}: {error}",
            path.display()
        );
        return ExitCode::from(2);
    }
    if report.failed().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
