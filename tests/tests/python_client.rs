//! The Python client (`proto/clients/python`), installed as a user installs
//! it (pip, which compiles the protos of this checkout into the package),
//! type-checked with mypy in strict mode, then its tests run against a real
//! `baton dev` (`proto/clients/python/tests`).

use std::path::PathBuf;
use std::process::Command;

use baton_tests::{repository_path, run_to_success};

fn package_dir() -> PathBuf {
    repository_path("proto/clients/python")
}

#[test]
fn the_python_client_installs_type_checks_and_passes_its_tests() {
    let site = tempfile::tempdir().expect("tempdir");
    // The build dependencies (setuptools, grpcio-tools) and the runtime
    // ones are installed by tests/run from tests/pip-packages.txt.
    run_to_success(
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
    run_to_success(
        "mypy --strict",
        Command::new("python3")
            .args(["-m", "mypy", "--config-file"])
            .arg(package_dir().join("pyproject.toml"))
            .arg("baton_client")
            .current_dir(site.path()),
    );
    run_to_success(
        "python -m unittest",
        Command::new("python3")
            .args(["-m", "unittest", "-v", "test_client"])
            .current_dir(package_dir().join("tests"))
            .env("PYTHONPATH", site.path())
            .env("BATON_BIN", baton_tests::binary("baton")),
    );
}
