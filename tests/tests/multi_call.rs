//! The container image ships one `baton` binary with the components' names
//! as links to it: invoked through such a link, `baton` must be that
//! component, flags, help and version alike, and anything else stays the CLI.

use std::path::Path;
use std::process::{Command, Output};

use baton_tests::binary;

const COMPONENTS: &[&str] = &[
    "baton-control",
    "baton-connector-queue",
    "baton-connector-sip",
    "baton-connector-webhook",
    "baton-connector-twilio",
    "baton-connector-amazon-connect",
    "baton-connector-script",
];

fn run(program: &Path, arg: &str) -> Output {
    Command::new(program)
        .arg(arg)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", program.display()))
}

#[test]
fn a_link_named_after_a_component_runs_that_component() {
    let links = tempfile::tempdir().expect("tempdir");
    for component in COMPONENTS {
        let link = links.path().join(component);
        std::os::unix::fs::symlink(binary("baton"), &link).expect("symlink");
        for arg in ["--help", "--version"] {
            let through_link = run(&link, arg);
            let own_binary = run(&binary(component), arg);
            assert!(
                through_link.status.success(),
                "{component} {arg}: {through_link:?}"
            );
            assert_eq!(
                String::from_utf8_lossy(&through_link.stdout),
                String::from_utf8_lossy(&own_binary.stdout),
                "{component} {arg} through the link to baton differs from its own binary"
            );
        }
    }
}

#[test]
fn any_other_name_is_the_cli() {
    let links = tempfile::tempdir().expect("tempdir");
    let link = links.path().join("baton-connector-unknown");
    std::os::unix::fs::symlink(binary("baton"), &link).expect("symlink");
    let help = String::from_utf8_lossy(&run(&link, "--help").stdout).into_owned();
    assert!(help.contains("handoff"), "not the CLI's help: {help}");
    assert!(help.contains("dev"), "not the CLI's help: {help}");
}
