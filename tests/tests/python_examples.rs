//! The integration examples of the Python client
//! (`proto/clients/python/examples`: a LiveKit Agents voice agent and a
//! Pipecat processor over one escalation guard), in a virtualenv of their
//! own: the frameworks are heavy and pin protobuf below the version the
//! system Python's other tests use. Installed from the pinned
//! `examples/requirements.txt`, type-checked with `mypy --strict`, then
//! `tests/test_examples.py` drives them with scripted turns (no LLM, no
//! audio) against a real `baton dev`.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_tests::{repository_path, run_to_success};

fn package_dir() -> PathBuf {
    repository_path("proto/clients/python")
}

/// `target/examples-venv`, beside the binaries' profile directory: kept
/// between runs, so pip only checks the pins after the first install.
fn venv_dir() -> PathBuf {
    // target/<profile>/deps/<test binary> → target
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("target directory")
        .join("examples-venv")
}

#[test]
fn the_livekit_and_pipecat_examples_hand_off_through_a_real_baton_dev() {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    run_to_success(
        "python3 -m venv",
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
    );
    let pip = |what: &str, args: &[&str], extra: &Path| {
        run_to_success(
            what,
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(args)
                .arg(extra),
        );
    };
    pip(
        "pip install -r examples/requirements.txt",
        &["-r"],
        &package_dir().join("examples/requirements.txt"),
    );
    // As a user installs the client: built (every time, pip rebuilds a
    // local directory) from this checkout, the protos compiled by the venv's
    // pinned grpcio-tools.
    pip(
        "pip install the client",
        &["--no-build-isolation"],
        &package_dir(),
    );
    run_to_success(
        "mypy --strict",
        Command::new(&python)
            .args(["-m", "mypy", "--strict", "--python-version", "3.10"])
            .arg("--cache-dir")
            .arg(venv.join("mypy-cache"))
            .args([
                "examples/baton_escalation.py",
                "examples/livekit_agent.py",
                "examples/pipecat_pipeline.py",
                "tests/test_examples.py",
            ])
            .env("MYPYPATH", "examples:tests")
            .current_dir(package_dir()),
    );
    run_to_success(
        "python -m unittest",
        Command::new(&python)
            .args(["-m", "unittest", "-v", "test_examples"])
            .current_dir(package_dir().join("tests"))
            .env("BATON_BIN", baton_tests::binary("baton")),
    );
}
