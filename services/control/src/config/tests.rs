use super::*;

#[tokio::test]
async fn the_reference_configuration_loads_and_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, EXAMPLE).expect("write");
    let config: ControlConfig =
        baton_service_kit::config::load(Some(&path), "BATON_EXAMPLE_TEST").expect("loads");
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.policy.tenants["acme"].repeated_failure.threshold, 3);
    crate::server::check(&config).expect("checks");
}

#[test]
fn the_postgres_store_needs_a_url_and_a_shared_token_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).expect("write");
        baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_STORE_TEST")
            .expect("loads")
    };
    let sqlite = load("");
    assert_eq!(sqlite.store.backend, StoreBackend::Sqlite);
    sqlite
        .store
        .check()
        .expect("the embedded store needs nothing");

    let no_url = load("[store]\nbackend = \"postgres\"\n");
    let error = no_url.store.check().expect_err("no url");
    assert!(error.starts_with("store.url:"), "{error}");

    let no_key = load("[store]\nbackend = \"postgres\"\nurl = \"postgres://u:secret@db/baton\"\n");
    let error = no_key.store.check().expect_err("no shared key");
    assert!(error.starts_with("store.token_key_file:"), "{error}");
    assert!(
        !format!("{:?}", no_key.store).contains("secret"),
        "the URL is never shown"
    );

    let url_file = dir.path().join("url");
    std::fs::write(&url_file, "postgres://u:p@db/baton\n").expect("write");
    let from_file = load(&format!(
        "[store]\nbackend = \"postgres\"\nurl_file = {:?}\ntoken_key_file = \"/k\"\nlease_ttl = \"2s\"\n",
        url_file.display().to_string()
    ));
    from_file.store.check().expect("complete");
    assert_eq!(
        from_file.store.postgres_url().expect("url"),
        "postgres://u:p@db/baton"
    );
    assert_eq!(from_file.store.lease_ttl, Duration::from_secs(2));

    std::fs::write(&path, "[store]\nbackend = \"mysql\"\n").expect("write");
    let error = baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_STORE_TEST")
        .expect_err("unknown backend");
    assert!(error.to_string().contains("backend"), "{error}");
}

#[test]
fn credentials_are_required_by_default_with_a_keys_file_in_the_data_dir() {
    let config = ControlConfig::default();
    assert_eq!(config.auth.mode, baton_auth::AuthMode::Required);
    assert_eq!(
        config.api_keys_file(),
        Some(PathBuf::from(".baton/data/api-keys.toml"))
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, "[store]\ndata_dir = \"/d\"\n").expect("write");
    let loaded: ControlConfig =
        baton_service_kit::config::load(Some(&path), "BATON_AUTH_DEFAULT_TEST").expect("loads");
    assert_eq!(loaded.auth.mode, baton_auth::AuthMode::Required);
    assert_eq!(
        loaded.api_keys_file(),
        Some(PathBuf::from("/d/api-keys.toml"))
    );
    std::fs::write(&path, "[rate_limit]\nburst = 0\n").expect("write");
    let loaded: ControlConfig =
        baton_service_kit::config::load(Some(&path), "BATON_AUTH_DEFAULT_TEST").expect("loads");
    let error = crate::server::check(&loaded).err().expect("refused");
    assert!(error.starts_with("rate_limit.burst"), "{error}");
    std::fs::write(&path, "[auth]\nmode = \"sometimes\"\n").expect("write");
    let error =
        baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_AUTH_DEFAULT_TEST")
            .expect_err("unknown mode");
    assert!(error.to_string().contains("mode"), "{error}");
}

#[test]
fn a_bad_value_names_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, "[server]\ngrpc_listen = \"not an address\"\n").expect("write");
    let error = baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_BAD_TEST")
        .expect_err("invalid");
    assert!(error.to_string().contains("grpc_listen"), "{error}");
    std::fs::write(&path, "[handoff]\ndefault_timout = \"1s\"\n").expect("write");
    let error = baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_BAD_TEST")
        .expect_err("unknown key");
    assert!(error.to_string().contains("default_timout"), "{error}");
}
