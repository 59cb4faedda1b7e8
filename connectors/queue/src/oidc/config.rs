//! `[desk.oidc]`: the issuer the desktop signs people in with, the client
//! it is registered as, and which of the ID token's claims give the
//! account, its role, its tenants and its name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::accounts::Role;

/// The OIDC client's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer's identifier (`https://idp.example.com/realms/acme`),
    /// exactly as its discovery document and ID tokens spell it; its
    /// discovery document is `{issuer}/.well-known/openid-configuration`.
    /// `https`, or `http` to a loopback address only.
    pub issuer: String,
    /// Shown on the sign-in page: "Sign in with {display_name}". Default:
    /// the issuer's host.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The client id the desktop is registered with at the issuer.
    pub client_id: String,
    /// The client secret, best given through the environment
    /// (`BATON_QUEUE_DESK__OIDC__CLIENT_SECRET`); never logged. Unset with
    /// `client_secret_file` unset too: a public client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<ClientSecret>,
    /// A file holding the client secret (a mounted Secret); surrounding
    /// white space is ignored. Read at start.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// How the secret is sent to the token endpoint: `basic` (HTTP Basic,
    /// `client_secret_basic`) or `post` (in the form,
    /// `client_secret_post`). Default `basic`.
    #[serde(default)]
    pub token_auth: TokenAuth,
    /// Where the issuer sends the browser back:
    /// `https://desk.example.com/auth/oidc/callback`, registered at the
    /// issuer as is. `https`, or `http` to a loopback address only.
    pub redirect_url: String,
    /// The scopes asked for; must include `openid`. Default `openid`,
    /// `profile`, `email`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim naming the account (the agent's id in the queue); 1 to 64
    /// letters, digits, `.`, `_`, `-` or `@`. Default `preferred_username`.
    #[serde(default = "default_account_claim")]
    pub account_claim: String,
    /// The claim with the name shown on the desktop. Default `name`; the
    /// account when absent.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// The claim listing the person's groups or roles at the issuer (a
    /// string or an array of strings; a dotted path such as
    /// `realm_access.roles` reaches into objects). Default `groups`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// The issuer's group or role name → the desk role it gives (`agent`,
    /// `supervisor`, `admin`); with several, the highest wins. Someone
    /// with none of these is refused. Required.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// The claim with the person's tenant(s) (a string or an array; dotted
    /// path as above). Default `tenant`.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// The tenant of a person whose token has no tenant claim (a
    /// single-tenant desk). Default none: such a person is refused.
    #[serde(default)]
    pub default_tenant: Option<String>,
    /// The claim with an agent's skills (a string or an array). Default
    /// none: skills come from the `agents` entry of the account's id.
    #[serde(default)]
    pub skills_claim: Option<String>,
    /// A PEM file of CAs trusted for the issuer, besides Mozilla's roots
    /// and the system's bundle. Default none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long any one request to the issuer (discovery, keys, token)
    /// may take. Default 10s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenAuth {
    #[default]
    Basic,
    Post,
}

/// A client secret: never in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}
fn default_account_claim() -> String {
    "preferred_username".into()
}
fn default_name_claim() -> String {
    "name".into()
}
fn default_roles_claim() -> String {
    "groups".into()
}
fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl OidcConfig {
    /// Checks what serde cannot; the error names the key under
    /// `desk.oidc`.
    pub fn validate(&self) -> Result<(), String> {
        let key = |k: &str| format!("desk.oidc.{k}");
        check_url(&self.issuer).map_err(|e| format!("{}: {e}", key("issuer")))?;
        check_url(&self.redirect_url).map_err(|e| format!("{}: {e}", key("redirect_url")))?;
        if self.client_id.is_empty() {
            return Err(format!("{}: must not be empty", key("client_id")));
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err(format!(
                "{}, {}: one or the other",
                key("client_secret"),
                key("client_secret_file")
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(format!("{}: must include openid", key("scopes")));
        }
        if self.roles.is_empty() {
            return Err(format!(
                "{}: map at least one of the issuer's groups to agent, supervisor or admin",
                key("roles")
            ));
        }
        if let Some(tenant) = &self.default_tenant
            && !baton_auth::principal::is_valid_tenant(tenant)
        {
            return Err(format!(
                "{}: not a valid tenant name",
                key("default_tenant")
            ));
        }
        if self.timeout.is_zero() {
            return Err(format!("{}: must be more than 0", key("timeout")));
        }
        Ok(())
    }

    /// The client secret, from the file or the key; None for a public
    /// client.
    pub fn load_secret(&self) -> Result<Option<ClientSecret>, String> {
        if let Some(path) = &self.client_secret_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("desk.oidc.client_secret_file: {}: {e}", path.display()))?;
            let secret = text.trim();
            if secret.is_empty() {
                return Err(format!(
                    "desk.oidc.client_secret_file: {} is empty",
                    path.display()
                ));
            }
            return Ok(Some(ClientSecret::new(secret)));
        }
        Ok(self.client_secret.clone())
    }

    /// What the sign-in button says after "Sign in with".
    pub fn shown_name(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| {
            host_of(&self.issuer)
                .map(str::to_owned)
                .unwrap_or_else(|| self.issuer.clone())
        })
    }
}

/// `https://host[:port]/path` → `host[:port]`.
fn host_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())
}

/// Whether the URL's host is this machine.
pub(super) fn is_loopback_url(url: &str) -> bool {
    host_of(url).is_some_and(is_loopback_host)
}

/// An absolute `https` URL, or `http` to a loopback host (a provider on
/// the same machine, as in tests): tokens and codes never cross a network
/// in clear.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err("an absolute URL (https://…)".into());
    };
    let host = host_of(url).ok_or("an absolute URL with a host")?;
    if url.contains('#') {
        return Err("no fragment".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        _ => Err("https (http only to 127.0.0.1, [::1] or localhost)".into()),
    }
}

fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config() -> OidcConfig {
        toml::from_str(
            "issuer = \"https://idp.example.com/realms/acme\"\nclient_id = \"desk\"\n\
             client_secret = \"s3cret\"\nredirect_url = \"https://desk.example.com/auth/oidc/callback\"\n\
             [roles]\ndesk-agents = \"agent\"\n",
        )
        .expect("parses")
    }

    #[test]
    fn the_secret_never_shows_and_bad_keys_are_named() {
        let config = config();
        config.validate().expect("valid");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.shown_name(), "idp.example.com");
        assert_eq!(config.scopes, ["openid", "profile", "email"]);

        let bad = |edit: &dyn Fn(&mut OidcConfig)| {
            let mut config = config.clone();
            edit(&mut config);
            config.validate().expect_err("refused")
        };
        let error = bad(&|c| c.issuer = "http://idp.example.com".into());
        assert!(error.starts_with("desk.oidc.issuer: https"), "{error}");
        let error = bad(&|c| c.redirect_url = "/callback".into());
        assert!(error.starts_with("desk.oidc.redirect_url"), "{error}");
        let error = bad(&|c| c.scopes = vec!["profile".into()]);
        assert!(error.contains("openid"), "{error}");
        let error = bad(&|c| c.roles.clear());
        assert!(error.starts_with("desk.oidc.roles"), "{error}");
        let error = bad(&|c| c.client_secret_file = Some("/run/secret".into()));
        assert!(error.contains("one or the other"), "{error}");

        let mut local = config.clone();
        local.issuer = "http://127.0.0.1:4444".into();
        local.redirect_url = "http://[::1]:8090/auth/oidc/callback".into();
        local.validate().expect("loopback may be plain http");
    }

    #[test]
    fn the_secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").expect("write");
        let mut config = config();
        config.client_secret = None;
        config.client_secret_file = Some(path.clone());
        let secret = config.load_secret().expect("read").expect("a secret");
        assert_eq!(secret.expose(), "from-file");
        std::fs::write(&path, "  \n").expect("write");
        assert!(config.load_secret().is_err());
    }
}
