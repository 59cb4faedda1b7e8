//! Configuration: serde defaults, then a file (TOML or YAML), then
//! environment variables named `<PREFIX>_<SECTION>__<KEY>` (`__` separates
//! nesting levels, e.g. `BATON_SERVER__GRPC_LISTEN`). Structs use
//! `deny_unknown_fields`, so a misspelt key is an error at start naming the
//! key. Only variables with a `__` are configuration, so that unrelated
//! variables sharing the prefix (`BATON_ENDPOINT` for the CLI, say) are not
//! mistaken for misspelt keys.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(#[from] config::ConfigError);

/// Loads `T` from its defaults, an optional file and the environment.
///
/// `prefix` is the environment prefix without the trailing underscore,
/// e.g. `"BATON"`.
pub fn load<T: DeserializeOwned>(file: Option<&Path>, prefix: &str) -> Result<T, ConfigError> {
    Ok(sources(file, prefix)?.build()?.try_deserialize()?)
}

/// A key that moved: older files write it at the top level as `from`; it
/// now lives at the dotted path `to` (e.g. `listen` → `server.grpc_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovedKey {
    pub from: &'static str,
    pub to: &'static str,
}

/// Like [`load`], and also accepts keys where older files put them: each
/// `moved` key found at the top level (of the file or the environment) is
/// moved to its new place before `T` sees it, so that a file written for
/// an earlier release keeps working. Returns the keys that were moved, for
/// the caller to warn about once logging is up. A key given both at its old
/// and its new place is an error naming both.
pub fn load_moving<T: DeserializeOwned>(
    file: Option<&Path>,
    prefix: &str,
    moved: &[MovedKey],
) -> Result<(T, Vec<MovedKey>), ConfigError> {
    use config::Source;
    let mut root = sources(file, prefix)?.build()?.collect()?;
    let mut found = Vec::new();
    for key in moved {
        let Some(value) = root.remove(key.from) else {
            continue;
        };
        let (sections, leaf) = match key.to.rsplit_once('.') {
            Some((sections, leaf)) => (sections.split('.').collect::<Vec<_>>(), leaf),
            None => (Vec::new(), key.to),
        };
        let mut table = &mut root;
        for section in sections {
            let entry = table.entry(section.to_owned()).or_insert_with(|| {
                config::Value::new(None, config::ValueKind::Table(config::Map::new()))
            });
            let config::ValueKind::Table(inner) = &mut entry.kind else {
                return Err(message(format!("{section}: must be a table")));
            };
            table = inner;
        }
        if table.contains_key(leaf) {
            return Err(message(format!(
                "{}: given twice, also as {} (its older name); keep only {}",
                key.to, key.from, key.to
            )));
        }
        table.insert(leaf.to_owned(), value);
        found.push(*key);
    }
    let value = config::Value::new(None, config::ValueKind::Table(root));
    Ok((value.try_deserialize()?, found))
}

fn message(text: String) -> ConfigError {
    ConfigError(config::ConfigError::Message(text))
}

/// The defaults-free builder of `file` and the `prefix` variables.
fn sources(
    file: Option<&Path>,
    prefix: &str,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).required(true));
    }
    let env_prefix = format!("{prefix}_");
    let variables: config::Map<String, String> = std::env::vars()
        .filter(|(name, _)| {
            name.strip_prefix(&env_prefix)
                .is_some_and(|key| key.contains("__"))
        })
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(prefix)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(variables)),
    );
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default = "default_port")]
        port: u16,
        #[serde(default)]
        name: String,
    }

    fn default_port() -> u16 {
        7
    }

    #[test]
    fn file_values_override_defaults_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "name = \"x\"\n").expect("write");
        let sample: Sample = load(Some(&good), "BATON_KIT_TEST_GOOD").expect("loads");
        assert_eq!(sample.port, 7);
        assert_eq!(sample.name, "x");

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "nmae = \"x\"\n").expect("write");
        let error = load::<Sample>(Some(&bad), "BATON_KIT_TEST_BAD").expect_err("rejects");
        assert!(error.to_string().contains("nmae"), "{error}");
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sectioned {
        server: Server,
        name: String,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        grpc_listen: String,
        port: u16,
    }

    impl Default for Sectioned {
        fn default() -> Self {
            Self {
                server: Server::default(),
                name: "default".into(),
            }
        }
    }

    impl Default for Server {
        fn default() -> Self {
            Self {
                grpc_listen: "127.0.0.1:1".into(),
                port: 7,
            }
        }
    }

    const MOVED: &[MovedKey] = &[MovedKey {
        from: "listen",
        to: "server.grpc_listen",
    }];

    #[test]
    fn a_moved_key_at_its_old_place_lands_at_its_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("old.toml");
        std::fs::write(&old, "listen = \"0.0.0.0:9\"\nname = \"x\"\n").expect("write");
        let new = dir.path().join("new.toml");
        std::fs::write(
            &new,
            "name = \"x\"\n[server]\ngrpc_listen = \"0.0.0.0:9\"\n",
        )
        .expect("write");
        let (from_old, moved): (Sectioned, _) =
            load_moving(Some(&old), "BATON_KIT_TEST_MOVED_OLD", MOVED).expect("old file");
        assert_eq!(moved, MOVED);
        let (from_new, moved): (Sectioned, _) =
            load_moving(Some(&new), "BATON_KIT_TEST_MOVED_NEW", MOVED).expect("new file");
        assert!(moved.is_empty());
        assert_eq!(from_old, from_new);
        assert_eq!(
            from_old.server.port, 7,
            "the section's other keys keep their defaults"
        );
    }

    #[test]
    fn a_key_at_both_places_is_refused_naming_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let both = dir.path().join("both.toml");
        std::fs::write(
            &both,
            "listen = \"0.0.0.0:9\"\n[server]\ngrpc_listen = \"0.0.0.0:8\"\n",
        )
        .expect("write");
        let error = load_moving::<Sectioned>(Some(&both), "BATON_KIT_TEST_MOVED_BOTH", MOVED)
            .expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains("server.grpc_listen") && text.contains("listen"),
            "{text}"
        );
    }
}
