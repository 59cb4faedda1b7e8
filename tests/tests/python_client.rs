//! The Python client (`proto/clients/python`), installed as a user installs
//! it (pip, which compiles the protos of this checkout into the package),
//! type-checked with mypy in strict mode, then its tests run against a real
//! `baton dev` (`proto/clients/python/tests`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/clients/python")
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

#[test]
fn the_python_client_installs_type_checks_and_passes_its_tests() {
    let site = tempfile::tempdir().expect("tempdir");
    // The build dependencies (setuptools, grpcio-tools) and the runtime
    // ones are installed by tests/run from tests/pip-packages.txt.
    run(
        "pip install",
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-build-isolation",
                "--no-deps",
            ])
            .arg("--target")
            .arg(site.path())
            .arg(package_dir()),
    );
    run(
        "mypy --strict",
        Command::new("python3")
            .args(["-m", "mypy", "--config-file"])
            .arg(package_dir().join("pyproject.toml"))
            .arg("baton_client")
            .current_dir(site.path()),
    );
    run(
        "python -m unittest",
        Command::new("python3")
            .args(["-m", "unittest", "-v", "test_client"])
            .current_dir(package_dir().join("tests"))
            .env("PYTHONPATH", site.path())
            .env("BATON_BIN", baton_tests::binary("baton")),
    );
}
