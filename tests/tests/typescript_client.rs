//! The TypeScript client (`proto/clients/typescript`), installed as a user
//! installs it (`npm ci`, whose `prepare` generates the messages from the
//! protos of this checkout with buf and compiles the package), type-checked
//! with its tests by `tsc --noEmit` in strict mode, then its tests run by
//! node's test runner against a real `baton dev`
//! (`proto/clients/typescript/test`).

use std::path::PathBuf;
use std::process::Command;

use baton_tests::{repository_path, run_to_success};

fn package_dir() -> PathBuf {
    repository_path("proto/clients/typescript")
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
    run_to_success("npm ci", &mut npm(&["ci", "--no-audit", "--no-fund"]));
    run_to_success("tsc --noEmit (strict)", &mut npm(&["run", "typecheck"]));
    run_to_success(
        "node --test",
        npm(&["test"]).env("BATON_BIN", baton_tests::binary("baton")),
    );
}
