//! The TypeScript client (`proto/clients/typescript`), installed as a user
//! installs it (`npm ci`, whose `prepare` generates the messages from the
//! protos of this checkout with buf and compiles the package), type-checked
//! with its tests by `tsc --noEmit` in strict mode, then its tests run by
//! node's test runner against a real `baton dev`
//! (`proto/clients/typescript/test`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/clients/typescript")
}

/// Runs `command`, and fails the test with its output when it fails.
fn run(what: &str, command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn npm(args: &[&str]) -> Command {
    let mut command = Command::new("npm");
    command.args(args).current_dir(package_dir());
    command
}

#[test]
fn the_typescript_client_installs_type_checks_and_passes_its_tests() {
    // Into the package's own node_modules, at the versions of its
    // package-lock.json (buf, protoc-gen-es and tsc included).
    run("npm ci", &mut npm(&["ci", "--no-audit", "--no-fund"]));
    run("tsc --noEmit (strict)", &mut npm(&["run", "typecheck"]));
    run(
        "node --test",
        npm(&["test"]).env("BATON_BIN", baton_tests::binary("baton")),
    );
}
