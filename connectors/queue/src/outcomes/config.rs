//! `[outcomes]`: where the supervisor view reads how the handoffs went
//! (the control service's `GetOutcomeMetrics`), and with which credential.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_auth::api_key::ApiKey;
use baton_proto::bearer::BearerCredential;
use baton_service_kit::tls::ClientTlsFiles;
use serde::Deserialize;

/// The control service's outcome metrics, read with one credential.
///
/// A credential belongs to one tenant, so the figures are that tenant's:
/// a desk serving several tenants would need one credential per tenant,
/// which this section does not offer (one `tenant`, one key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomesConfig {
    /// The control service's gRPC endpoint, `http://…` or `https://…`
    /// (the latter with `tls`). Required.
    pub control_endpoint: String,
    /// A file holding an API key (`bk_<id>_<secret>`, `baton auth new-key
    /// --role supervisor`) of `tenant`; read once at start, trimmed, sent
    /// as `authorization: Bearer …`, never logged. Required.
    pub api_key_file: PathBuf,
    /// The tenant of the key: only supervisors and admins who see this
    /// tenant are shown its figures. Required.
    pub tenant: String,
    /// TLS to the control service (`ca_file`, and `cert_file`/`key_file`
    /// for mTLS, `server_name`), as the control service's own clients
    /// write it. Needed with an `https://` endpoint.
    #[serde(default)]
    pub tls: Option<ClientTlsFiles>,
    /// The most one refresh of the panel may take, all its calls
    /// included (each call is also given this as its gRPC deadline).
    /// Default 10s; less than `server.http.request_timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl OutcomesConfig {
    /// Checks what serde cannot; the error names the key (under
    /// `outcomes.`). `request_timeout` is the desktop listener's.
    pub fn validate(&self, request_timeout: Duration) -> Result<(), String> {
        let https = self.control_endpoint.starts_with("https://");
        if !https && !self.control_endpoint.starts_with("http://") {
            return Err("outcomes.control_endpoint: an http:// or https:// URL".into());
        }
        tonic::transport::Endpoint::from_shared(self.control_endpoint.clone())
            .map_err(|e| format!("outcomes.control_endpoint: {e}"))?;
        match (&self.tls, https) {
            (None, true) => {
                return Err(
                    "outcomes.tls.ca_file: required with an https:// control_endpoint \
                     (the CA that signs the control service's certificate)"
                        .into(),
                );
            }
            (Some(_), false) => {
                return Err(
                    "outcomes.control_endpoint: outcomes.tls is set, so it must be https://".into(),
                );
            }
            (Some(tls), true) => {
                tls.tonic_config().map_err(|e| format!("outcomes.{e}"))?;
            }
            (None, false) => {}
        }
        // `*` is the desk's "every tenant", never a credential's.
        if !baton_auth::principal::is_valid_tenant(&self.tenant)
            || self.tenant == crate::accounts::EVERY_TENANT
        {
            return Err("outcomes.tenant: the API key's tenant, a valid tenant name".into());
        }
        if self.timeout.is_zero() || self.timeout >= request_timeout {
            return Err(format!(
                "outcomes.timeout: more than 0 and less than server.http.request_timeout \
                 ({request_timeout:?})"
            ));
        }
        self.credential()?;
        Ok(())
    }

    /// Reads the API key file: the `authorization` header's value.
    pub fn credential(&self) -> Result<BearerCredential, String> {
        read_credential(&self.api_key_file)
    }
}

fn read_credential(path: &Path) -> Result<BearerCredential, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("outcomes.api_key_file: {}: {e}", path.display()))?;
    let key = text.trim();
    // The error says what is wrong with the format, never the text.
    ApiKey::parse(key).map_err(|e| format!("outcomes.api_key_file: {}: {e}", path.display()))?;
    BearerCredential::new(Some(key))
        .map_err(|_| format!("outcomes.api_key_file: {}: not ASCII", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed key (not a real one): `bk_`, 16 hex digits, `_`, 32
    /// bytes in base64url.
    const KEY: &str = "bk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    fn config(dir: &Path, key: &str, extra: &str) -> Result<OutcomesConfig, String> {
        let key_file = dir.join("control-key");
        std::fs::write(&key_file, key).expect("write");
        let text = format!(
            "control_endpoint = \"http://127.0.0.1:50051\"\napi_key_file = {:?}\n\
             tenant = \"acme\"\n{extra}",
            key_file.display().to_string()
        );
        toml::from_str::<OutcomesConfig>(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_complete_section_is_valid_and_its_key_is_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = config(dir.path(), &format!("{KEY}\n"), "").expect("parses");
        good.validate(REQUEST_TIMEOUT).expect("valid");
        assert_eq!(good.timeout, Duration::from_secs(10));
        let credential = good.credential().expect("read");
        let header = credential.header().expect("a credential");
        assert_eq!(
            header.to_str().expect("ascii"),
            format!("Bearer {KEY}"),
            "trimmed"
        );
        assert!(header.is_sensitive());
        assert!(!format!("{credential:?}").contains("bk_"));
    }

    #[test]
    fn each_mistake_is_named_by_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = |key: &str, extra: &str| {
            config(dir.path(), key, extra)
                .and_then(|c| c.validate(REQUEST_TIMEOUT))
                .expect_err("refused")
        };
        let bad = error("not-a-key-at-all", "");
        assert!(bad.starts_with("outcomes.api_key_file:"), "{bad}");
        assert!(!bad.contains("not-a-key-at-all"), "never the file's text");
        let short = error("bk_0123456789abcdef_short", "");
        assert!(
            short.contains("characters long") && !short.contains("short\""),
            "{short}"
        );

        let missing = OutcomesConfig {
            api_key_file: dir.path().join("absent"),
            ..config(dir.path(), KEY, "").expect("parses")
        }
        .validate(REQUEST_TIMEOUT)
        .expect_err("refused");
        assert!(missing.starts_with("outcomes.api_key_file:"), "{missing}");

        let tenant = config(dir.path(), KEY, "")
            .map(|c| OutcomesConfig {
                tenant: "*".into(),
                ..c
            })
            .and_then(|c| c.validate(REQUEST_TIMEOUT))
            .expect_err("refused");
        assert!(tenant.starts_with("outcomes.tenant:"), "{tenant}");

        let https = config(dir.path(), KEY, "")
            .map(|c| OutcomesConfig {
                control_endpoint: "https://control.example.com".into(),
                ..c
            })
            .and_then(|c| c.validate(REQUEST_TIMEOUT))
            .expect_err("refused");
        assert!(https.starts_with("outcomes.tls.ca_file:"), "{https}");

        let ca = error(KEY, "[tls]\nca_file = \"/nonexistent/ca.pem\"\n");
        assert!(ca.starts_with("outcomes.control_endpoint:"), "{ca}");
        let ca = config(
            dir.path(),
            KEY,
            "[tls]\nca_file = \"/nonexistent/ca.pem\"\n",
        )
        .map(|c| OutcomesConfig {
            control_endpoint: "https://control.example.com".into(),
            ..c
        })
        .and_then(|c| c.validate(REQUEST_TIMEOUT))
        .expect_err("refused");
        assert!(ca.starts_with("outcomes.tls.ca_file:"), "{ca}");

        let scheme = config(dir.path(), KEY, "")
            .map(|c| OutcomesConfig {
                control_endpoint: "127.0.0.1:50051".into(),
                ..c
            })
            .and_then(|c| c.validate(REQUEST_TIMEOUT))
            .expect_err("refused");
        assert!(scheme.starts_with("outcomes.control_endpoint:"), "{scheme}");

        let slow = error(KEY, "timeout = \"30s\"\n");
        assert!(slow.starts_with("outcomes.timeout:"), "{slow}");
        let zero = error(KEY, "timeout = \"0s\"\n");
        assert!(zero.starts_with("outcomes.timeout:"), "{zero}");

        let typo = error(KEY, "api_key = \"x\"\n");
        assert!(typo.contains("api_key"), "{typo}");
    }
}
