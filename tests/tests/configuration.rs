//! Configuration layering (defaults, then the file, then `BATON_…`
//! variables, then flags) and every kind of configuration error, through
//! the real binaries: each error names the key and says what was expected.

use std::process::Command;

use baton_tests::{Service, binary};

/// Runs `baton config check` on `contents` (as `name`) with `env`;
/// returns the exit code and everything printed.
fn check(name: &str, contents: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write config");
    let output = Command::new(binary("baton"))
        .args(["config", "check", "--component", "control"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .expect("run baton config check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// What is wrong, the file, the environment, and what the error must say.
type ErrorCase<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn each_kind_of_error_names_the_key_and_what_was_expected() {
    let cases: &[ErrorCase] = &[
        (
            "unknown key",
            "[server]\ngrpc_lsten = \"127.0.0.1:1\"\n",
            &[],
            &["grpc_lsten"],
        ),
        ("unknown section", "[sever]\n", &[], &["sever"]),
        (
            "bad address",
            "[server]\ngrpc_listen = \"localhost\"\n",
            &[],
            &["grpc_listen", "socket address"],
        ),
        (
            "bad duration",
            "[server]\ndrain_timeout = \"ten seconds\"\n",
            &[],
            &["drain_timeout"],
        ),
        (
            "bad enum value",
            "[telemetry]\nlog_format = \"xml\"\n",
            &[],
            &["log_format", "text", "json"],
        ),
        (
            "wrong type",
            "[limits]\nmax_entities = \"many\"\n",
            &[],
            &["max_entities"],
        ),
        ("syntax", "[server\n", &[], &["control.toml"]),
        (
            "bad environment value",
            "",
            &[("BATON_SERVER__DRAIN_TIMEOUT", "soon")],
            &["drain_timeout"],
        ),
        (
            "unknown environment key",
            "",
            &[("BATON_SERVER__GRPC_LSTEN", "127.0.0.1:1")],
            &["grpc_lsten"],
        ),
        (
            "inconsistent values",
            "[handoff]\ndefault_timeout = \"1h\"\nmax_timeout = \"1m\"\n",
            &[],
            &["handoff.default_timeout", "max_timeout"],
        ),
        (
            "route to an unknown connector",
            "[[routes]]\nname = \"r\"\ntargets = [{ connector = \"nowhere\", queue = \"q\" }]\n",
            &[],
            &["nowhere"],
        ),
        (
            "hours in a zone that does not exist",
            "[[hours]]\nname = \"office\"\ntime_zone = \"Mars/Olympus\"\n",
            &[],
            &["hours[0].time_zone", "IANA"],
        ),
        (
            "a window that closes before it opens",
            "[[hours]]\nname = \"office\"\ntime_zone = \"UTC\"\nmonday = [\"18:00-08:00\"]\n",
            &[],
            &["hours[0].monday[0]", "two windows"],
        ),
        (
            "a route with hours nobody defined",
            "[connectors.queue]\nendpoint = \"http://127.0.0.1:9\"\n\n\
             [[routes]]\nname = \"r\"\nhours = \"office\"\ntargets = [{ connector = \"queue\", queue = \"q\" }]\n",
            &[],
            &["routes[0].hours", "office"],
        ),
    ];
    for (what, contents, env, expected) in cases {
        let (code, text) = check("control.toml", contents, env);
        assert_eq!(code, 4, "{what}: exit code for {contents:?}: {text}");
        for needle in *expected {
            assert!(
                text.contains(needle),
                "{what}: {needle:?} missing from: {text}"
            );
        }
    }
}

#[test]
fn yaml_and_toml_files_are_both_read_and_valid_ones_pass() {
    let (code, text) = check(
        "control.yaml",
        "server:\n  grpc_listen: 127.0.0.1:0\ntelemetry:\n  log_format: json\n",
        &[],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = check("control.yaml", "server:\n  grpc_lsten: 1\n", &[]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("grpc_lsten"), "{text}");
}

#[test]
fn the_reference_configuration_is_valid() {
    let output = Command::new(binary("baton"))
        .args(["config", "example"])
        .output()
        .expect("baton config example");
    let example = String::from_utf8(output.stdout).expect("utf-8");
    assert!(example.contains("[telemetry]"), "{example}");
    let (code, text) = check("example.toml", &example, &[]);
    assert_eq!(code, 0, "{text}");
}

/// A free loopback port (bound, then released for the service to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test]
async fn flags_override_the_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file_grpc, env_grpc, env_http, flag_http) =
        (free_port(), free_port(), free_port(), free_port());
    let config = dir.path().join("control.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:{file_grpc}\"\nhttp_listen = \"127.0.0.1:{}\"\n[store]\ndata_dir = {:?}\n",
            free_port(),
            dir.path().join("data").display().to_string()
        ),
    )
    .expect("write config");
    let env_grpc_address = format!("127.0.0.1:{env_grpc}");
    let env_http_address = format!("127.0.0.1:{env_http}");
    let flag_http_address = format!("127.0.0.1:{flag_http}");
    let control = Service::start_with_env(
        "baton-control",
        &[
            "--config",
            config.to_str().expect("path"),
            "--http-listen",
            &flag_http_address,
        ],
        &[
            ("BATON_SERVER__GRPC_LISTEN", env_grpc_address.as_str()),
            ("BATON_SERVER__HTTP_LISTEN", env_http_address.as_str()),
        ],
        dir.path(),
    )
    .await
    .expect("start control");
    // The file's gRPC address lost to the environment; the environment's
    // HTTP address lost to the flag.
    assert_eq!(control.addr("grpc").port(), env_grpc);
    assert_eq!(control.addr("http").port(), flag_http);
}

#[tokio::test]
async fn a_bad_value_stops_the_service_at_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(binary("baton-control"))
        .env("BATON_TELEMETRY__TRACE_SAMPLE_RATIO", "2.5")
        .env("BATON_STORE__DATA_DIR", dir.path().join("data"))
        .output()
        .await
        .expect("run baton-control");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("telemetry.trace_sample_ratio"), "{stderr}");
}

/// Connectors load their files through the connector SDK's runner: a file
/// written for an earlier release (top-level `grpc_listen`, `http_listen`,
/// `data_dir`) starts the queue on the same addresses as one written with
/// `[server]` and `[store]`, logging one deprecation warning per moved key
/// that names its new place; the environment and the flags override both
/// the same way as the control service's.
#[tokio::test]
async fn a_connector_reads_old_top_level_keys_and_new_sections_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (grpc, http) = (free_port(), free_port());
    let data = dir.path().join("queue-data").display().to_string();
    let old = dir.path().join("old.toml");
    std::fs::write(
        &old,
        format!(
            "grpc_listen = \"127.0.0.1:{grpc}\"\nhttp_listen = \"127.0.0.1:{http}\"\ndata_dir = {data:?}\n"
        ),
    )
    .expect("write config");
    let mut queue = Service::start(
        "baton-connector-queue",
        &["--config", old.to_str().expect("path")],
        dir.path(),
    )
    .await
    .expect("the queue starts on an old-style file");
    assert_eq!(
        (queue.addr("grpc").port(), queue.addr("http").port()),
        (grpc, http)
    );
    let logs = queue.logs();
    for (old_key, new_key) in [
        ("grpc_listen", "server.grpc_listen"),
        ("http_listen", "server.http_listen"),
        ("data_dir", "store.data_dir"),
    ] {
        let warning = format!("deprecated configuration key {old_key}: write it as {new_key}");
        assert_eq!(
            logs.matches(&warning).count(),
            1,
            "{warning} once in:\n{logs}"
        );
    }
    assert!(queue.stop().await.expect("stops").success());

    let new = dir.path().join("new.toml");
    std::fs::write(
        &new,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:{grpc}\"\nhttp_listen = \"127.0.0.1:{http}\"\n\n[store]\ndata_dir = {data:?}\n"
        ),
    )
    .expect("write config");
    let env_http = free_port();
    let env_http_address = format!("127.0.0.1:{env_http}");
    let flag_grpc = free_port();
    let flag_grpc_address = format!("127.0.0.1:{flag_grpc}");
    let queue = Service::start_with_env(
        "baton-connector-queue",
        &[
            "--config",
            new.to_str().expect("path"),
            "--listen",
            &flag_grpc_address,
        ],
        &[("BATON_QUEUE_SERVER__HTTP_LISTEN", env_http_address.as_str())],
        dir.path(),
    )
    .await
    .expect("the queue starts on a new-style file");
    assert_eq!(
        queue.addr("grpc").port(),
        flag_grpc,
        "the flag wins over the file"
    );
    assert_eq!(
        queue.addr("http").port(),
        env_http,
        "the environment wins over the file"
    );
    assert!(!queue.logs().contains("deprecated"), "{}", queue.logs());

    // A key at both places is refused, naming both.
    let both = dir.path().join("both.toml");
    std::fs::write(
        &both,
        format!("data_dir = {data:?}\n\n[store]\ndata_dir = {data:?}\n"),
    )
    .expect("write config");
    let output = tokio::process::Command::new(binary("baton-connector-queue"))
        .args(["--config", both.to_str().expect("path")])
        .output()
        .await
        .expect("run baton-connector-queue");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("store.data_dir") && stderr.contains("data_dir (its older name)"),
        "{stderr}"
    );
}
