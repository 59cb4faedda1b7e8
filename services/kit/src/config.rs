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
    Ok(builder.build()?.try_deserialize()?)
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
}
