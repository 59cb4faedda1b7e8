//! The SIP user agent's configuration keys, shared by every connector that
//! embeds the stack. `UserAgentConfig::default()` is a working loopback
//! configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::message;

mod consult;
pub use consult::{ConsultConfig, DEFAULT_BRIEF, LanguageBrief, PLACEHOLDERS};

/// The SIP user agent's configuration: its endpoint, its timers, the
/// context it signals and where phone numbers and challenges go. A
/// connector embeds these keys in its own configuration (the SIP
/// connector at its top level, the queue under `[voice]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserAgentConfig {
    /// The user agent's own SIP endpoint.
    pub sip: SipEndpointConfig,
    /// How long the human's phone may ring before the INVITE is cancelled
    /// and the transfer fails with NO_ANSWER. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// How long to wait, after sending a REFER, for the NOTIFY that reports
    /// its final outcome; a 202 alone is not success. Default `32s`.
    #[serde(with = "humantime_serde")]
    pub notify_timeout: Duration,
    /// What context goes into the signalling, and where.
    pub headers: HeaderPolicy,
    /// Trunks for phone-number targets, chosen by the longest matching prefix.
    pub trunks: Vec<TrunkConfig>,
    /// Digest credentials for other SIP elements that challenge (a PBX
    /// behind a SIP URI target, the caller's gateway for REFER), by host.
    pub credentials: Vec<CredentialConfig>,
}

/// Digest credentials for one host.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// `host` or `host:port` as written in the URIs sent to it.
    pub host: String,
    pub username: String,
    /// Never logged.
    pub password: String,
}

impl std::fmt::Debug for CredentialConfig {
    // The password stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("host", &self.host)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Default for UserAgentConfig {
    fn default() -> Self {
        Self {
            sip: SipEndpointConfig::default(),
            ring_timeout: Duration::from_secs(30),
            notify_timeout: Duration::from_secs(32),
            headers: HeaderPolicy::default(),
            trunks: Vec::new(),
            credentials: Vec::new(),
        }
    }
}

/// A SIP transport. The connector listens on UDP and TCP on the same port,
/// and on TLS (over TCP) where `sip.tls.bind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (RFC 3261 26.2): `sips:` URIs and `;transport=tls`.
    /// Needs `sip.tls`; never falls back to TCP or UDP.
    Tls,
}

impl Transport {
    /// The port of a URI that names none: 5061 for TLS, 5060 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 5061,
            Self::Udp | Self::Tcp => 5060,
        }
    }
}

/// The connector's SIP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipEndpointConfig {
    /// Local SIP address, UDP and TCP on the same port; port 0 picks a free
    /// port, announced as `sip` in the readiness line. Default `127.0.0.1:5062`.
    pub bind: SocketAddr,
    /// The transport of requests whose URI names none (`;transport=tcp`
    /// chooses TCP for one URI, `sips:` or `;transport=tls` TLS). `tls`
    /// needs `sip.tls`. Default `udp`.
    pub transport: Transport,
    /// Host (and port) written in Via and Contact when it differs from the
    /// bound address (behind NAT, in a container). Default: the bound address.
    pub public_address: Option<String>,
    /// User part of the connector's own URI (From, Contact, Referred-By).
    /// Default `baton`.
    pub user: String,
    /// Every request goes to this proxy (`host:port`) instead of the
    /// Request-URI's host, e.g. a kamailio or an SBC. Default: none.
    pub outbound_proxy: Option<String>,
    /// RFC 3261 T1, the round-trip estimate behind every retransmission
    /// timer. Default `500ms`.
    #[serde(with = "humantime_serde")]
    pub t1: Duration,
    /// The most bytes of replies kept for retransmitted requests (each
    /// reply is kept 64*T1, RFC 3261 timers J and H, and copies its
    /// request's Via headers); past it the oldest go first, and a request
    /// retransmitted after that is answered again. Default 4 MiB.
    pub reply_cache_bytes: usize,
    /// SIP over TLS: the CAs that sign the peers' certificates, the
    /// connector's own certificate, and a TLS listener. Without it, `sips:`
    /// targets and `;transport=tls` fail (UNSUPPORTED, UNREACHABLE), never
    /// sent in clear. Default: none.
    pub tls: Option<SipTlsConfig>,
}

/// SIP over TLS, with the same certificate checks as the gRPC side
/// (rustls, webpki): the peer's chain must lead to `ca_file` and name the
/// host dialled (or `server_name`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipTlsConfig {
    /// PEM file with the CAs that sign the peers' certificates (trunks,
    /// proxies, PBXs), and, with `require_client_cert`, the certificates of
    /// peers that connect to the listener. Required.
    pub ca_file: PathBuf,
    /// PEM file with the connector's certificate chain: served by the
    /// listener, and presented to peers that ask for a client certificate.
    /// Goes with `key_file`. Default: none.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key of `cert_file`. Default: none.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name every peer's certificate must carry, when it is not the
    /// host of the URI (or outbound proxy) dialled. Default: that host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// TLS listener, for in-dialog requests (NOTIFY, BYE) from peers that
    /// open their own connection rather than reuse the connector's; port 0
    /// picks one, announced as `sips` in the readiness line. Needs
    /// `cert_file` and `key_file`. Default: none (peers must reuse the
    /// connection the connector opened).
    #[serde(default)]
    pub bind: Option<SocketAddr>,
    /// Peers connecting to the listener must present a certificate signed
    /// by `ca_file`, so that nobody else can send in-dialog requests.
    /// Default true.
    #[serde(default = "default_true")]
    pub require_client_cert: bool,
    /// Host and port written in Via and Contact for TLS (`sips:` Contact).
    /// Default: the host of `sip.public_address` (or the bound address)
    /// with the port of the TLS listener.
    #[serde(default)]
    pub public_address: Option<String>,
    /// Longest a TLS handshake may take, outgoing or on the listener.
    /// Default `10s`.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

fn default_true() -> bool {
    true
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for SipEndpointConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 5062)),
            transport: Transport::Udp,
            public_address: None,
            user: "baton".into(),
            outbound_proxy: None,
            t1: Duration::from_millis(500),
            reply_cache_bytes: crate::stack::REPLY_CACHE_BYTES,
            tls: None,
        }
    }
}

/// Where User-to-User goes: some platforms read it only inside the REFER's
/// Refer-To URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UuiPlacement {
    /// A `User-to-User` header in the INVITE to the human (warm) or as a
    /// header of the Refer-To URI (blind, where there is no INVITE of ours).
    Header,
    /// `?User-to-User=…` in the Refer-To URI of every REFER, plus the INVITE
    /// header on warm transfers.
    ReferTo,
}

/// What context goes into the signalling. Sensitive entities never do: the
/// control service leaves them out of the payloads this connector receives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderPolicy {
    /// Send the handoff token in `User-to-User` (RFC 7433, hex). Default true.
    pub user_to_user: bool,
    /// The `purpose` parameter of User-to-User. Default `isdn-uui`.
    pub uui_purpose: String,
    /// Default `header`.
    pub uui_placement: UuiPlacement,
    /// Targets (SIP URI prefixes such as `sip:queue@cc.example`, or number
    /// prefixes such as `+4930`) whose platform reads User-to-User only in
    /// the Refer-To URI: `refer_to` placement for them whatever
    /// `uui_placement` says. Default none.
    pub uui_in_refer_to: Vec<String>,
    /// Send the screen-pop URL in `Call-Info;purpose=info`. Default true.
    pub call_info: bool,
    /// Fields of the SIP_HEADERS payload sent as `X-Baton-<Field>` headers.
    /// Default `["intent", "reason", "language", "priority"]`.
    pub x_headers: Vec<String>,
    /// Send the caller's number in `P-Asserted-Identity` when known and
    /// when `send_sensitive` names `caller_number`. Default true.
    pub p_asserted_identity: bool,
    /// The sensitive values that may leave in signalling, each named
    /// explicitly: `caller_number` (the caller's number, in
    /// `P-Asserted-Identity` and, with a trunk's `caller_id_policy =
    /// "original"`, in the From of calls through the trunk). Sensitive
    /// values not named here never leave in any header. Default none.
    pub send_sensitive: Vec<SensitiveValue>,
}

/// A sensitive value of a handoff that configuration may let into SIP
/// headers (`headers.send_sensitive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveValue {
    /// `conversation.call.caller_number`.
    CallerNumber,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        Self {
            user_to_user: true,
            uui_purpose: "isdn-uui".into(),
            uui_placement: UuiPlacement::Header,
            uui_in_refer_to: Vec::new(),
            call_info: true,
            x_headers: ["intent", "reason", "language", "priority"]
                .map(String::from)
                .to_vec(),
            p_asserted_identity: true,
            send_sensitive: Vec::new(),
        }
    }
}

/// How a phone number is written in the trunk's Request-URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberFormat {
    /// `sip:+4930123456@host;user=phone`.
    E164,
    /// Without the plus: `sip:4930123456@host;user=phone`.
    Digits,
}

/// Whose number goes in the From of calls through a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdPolicy {
    /// The original caller's number when the handoff has one, else `caller_id`.
    Original,
    /// Always `caller_id`.
    Fixed,
}

/// A SIP trunk to the phone network.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// A name for logs and errors.
    pub name: String,
    /// Number prefixes (E.164, with `+`) this trunk serves; the longest match
    /// wins. An empty prefix matches every number.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// The trunk's host, with an optional port: `sip.example.net:5060`.
    pub host: String,
    /// `udp` (default), `tcp` or `tls` (needs `sip.tls`).
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// Digest user name, when the trunk challenges with 401/407.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password. Never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// Default `e164`.
    #[serde(default = "default_number_format")]
    pub number_format: NumberFormat,
    /// The number presented when the caller's is not (E.164).
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Default `original`.
    #[serde(default = "default_caller_id_policy")]
    pub caller_id_policy: CallerIdPolicy,
}

fn default_transport() -> Transport {
    Transport::Udp
}

fn default_number_format() -> NumberFormat {
    NumberFormat::E164
}

fn default_caller_id_policy() -> CallerIdPolicy {
    CallerIdPolicy::Original
}

impl std::fmt::Debug for TrunkConfig {
    // The password stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("prefixes", &self.prefixes)
            .field("host", &self.host)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("number_format", &self.number_format)
            .field("caller_id", &self.caller_id)
            .field("caller_id_policy", &self.caller_id_policy)
            .finish()
    }
}

impl HeaderPolicy {
    /// Whether configuration lets `value` into SIP headers.
    pub fn may_send(&self, value: SensitiveValue) -> bool {
        self.send_sensitive.contains(&value)
    }

    /// Where User-to-User goes for `target` (a SIP URI or an E.164 number).
    pub fn uui_placement_for(&self, target: &str) -> UuiPlacement {
        if self
            .uui_in_refer_to
            .iter()
            .any(|prefix| !prefix.is_empty() && target.starts_with(prefix.as_str()))
        {
            UuiPlacement::ReferTo
        } else {
            self.uui_placement
        }
    }
}

impl UserAgentConfig {
    /// The default configuration on a free loopback port (SIP port 0), for
    /// tests and in-process use.
    pub fn ephemeral() -> Self {
        let mut config = Self::default();
        config.sip.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Checks what serde cannot, naming the exact key in the error.
    pub fn validate(&self) -> Result<(), String> {
        if self.sip.t1.is_zero() {
            return Err("sip.t1 must be more than 0".into());
        }
        if self.ring_timeout.is_zero() {
            return Err("ring_timeout must be more than 0".into());
        }
        if self.notify_timeout.is_zero() {
            return Err("notify_timeout must be more than 0".into());
        }
        if self.sip.reply_cache_bytes < message::MAX_MESSAGE_BYTES {
            return Err(format!(
                "sip.reply_cache_bytes must be at least {} (one message)",
                message::MAX_MESSAGE_BYTES
            ));
        }
        if self.sip.user.is_empty() || !self.sip.user.chars().all(is_user_char) {
            return Err("sip.user must be letters, digits, '.', '_', '-' or '+'".into());
        }
        self.validate_tls()?;
        for (i, trunk) in self.trunks.iter().enumerate() {
            if trunk.host.is_empty() || trunk.host.contains(|c: char| c.is_whitespace() || c == '@')
            {
                return Err(format!("trunks[{i}].host must be host or host:port"));
            }
            for prefix in &trunk.prefixes {
                if !prefix.chars().all(|c| c == '+' || c.is_ascii_digit()) {
                    return Err(format!(
                        "trunks[{i}].prefixes: {prefix:?} is not a number prefix"
                    ));
                }
            }
            if trunk.username.is_some() != trunk.password.is_some() {
                return Err(format!("trunks[{i}]: username and password go together"));
            }
            if let Some(caller_id) = &trunk.caller_id
                && !is_e164(caller_id)
            {
                return Err(format!(
                    "trunks[{i}].caller_id must be E.164 (+ and digits)"
                ));
            }
        }
        Ok(())
    }

    /// TLS is configured whole, and wherever it is asked for.
    fn validate_tls(&self) -> Result<(), String> {
        let tls_missing = self.sip.tls.is_none();
        if tls_missing && self.sip.transport == Transport::Tls {
            return Err("sip.transport = \"tls\" needs sip.tls (ca_file)".into());
        }
        for (i, trunk) in self.trunks.iter().enumerate() {
            if tls_missing && trunk.transport == Transport::Tls {
                return Err(format!(
                    "trunks[{i}].transport = \"tls\" needs sip.tls (ca_file)"
                ));
            }
        }
        let Some(tls) = &self.sip.tls else {
            return Ok(());
        };
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err("sip.tls.cert_file and sip.tls.key_file go together".into());
        }
        if tls.bind.is_some() && tls.cert_file.is_none() {
            return Err("sip.tls.bind needs sip.tls.cert_file and sip.tls.key_file".into());
        }
        if tls.handshake_timeout.is_zero() {
            return Err("sip.tls.handshake_timeout must be more than 0".into());
        }
        if let Some(name) = &tls.server_name
            && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            return Err("sip.tls.server_name is not a valid DNS name or IP address".into());
        }
        Ok(())
    }

    /// The credentials configured for the host of `uri`, by `host:port`
    /// first, then by host alone.
    pub fn credentials_for(&self, uri: &str) -> Option<(String, String)> {
        let parsed = rsip::Uri::try_from(uri).ok()?;
        let with_port = parsed.host_with_port.to_string();
        let host = parsed.host_with_port.host.to_string();
        self.credentials
            .iter()
            .find(|c| c.host == with_port)
            .or_else(|| self.credentials.iter().find(|c| c.host == host))
            .map(|c| (c.username.clone(), c.password.clone()))
    }

    /// The trunk for `number`: the longest matching prefix.
    pub fn trunk_for(&self, number: &str) -> Option<&TrunkConfig> {
        self.trunks
            .iter()
            .filter_map(|trunk| {
                let best = trunk
                    .prefixes
                    .iter()
                    .filter(|p| number.starts_with(p.as_str()))
                    .map(String::len)
                    .max();
                match (best, trunk.prefixes.is_empty()) {
                    (Some(length), _) => Some((length, trunk)),
                    (None, true) => Some((0, trunk)),
                    (None, false) => None,
                }
            })
            .max_by_key(|(length, _)| *length)
            .map(|(_, trunk)| trunk)
    }
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')
}

/// `+` then 2 to 15 digits.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(name: &str, prefixes: &[&str]) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            host: "trunk.example".into(),
            transport: Transport::Udp,
            username: None,
            password: Some("secret".into()),
            number_format: NumberFormat::E164,
            caller_id: None,
            caller_id_policy: CallerIdPolicy::Original,
        }
    }

    #[test]
    fn the_longest_prefix_chooses_the_trunk() {
        let config = UserAgentConfig {
            trunks: vec![
                trunk("world", &[]),
                trunk("germany", &["+49"]),
                trunk("berlin", &["+4930"]),
            ],
            ..Default::default()
        };
        let name = |n: &str| config.trunk_for(n).map(|t| t.name.clone());
        assert_eq!(name("+493012345").as_deref(), Some("berlin"));
        assert_eq!(name("+498912345").as_deref(), Some("germany"));
        assert_eq!(name("+14155550100").as_deref(), Some("world"));
    }

    #[test]
    fn uui_placement_can_be_chosen_per_target() {
        let policy = HeaderPolicy {
            uui_in_refer_to: vec!["sip:queue@cc.example".into(), "+4930".into()],
            ..Default::default()
        };
        assert_eq!(
            policy.uui_placement_for("sip:queue@cc.example;transport=tcp"),
            UuiPlacement::ReferTo
        );
        assert_eq!(
            policy.uui_placement_for("+493012345"),
            UuiPlacement::ReferTo
        );
        assert_eq!(
            policy.uui_placement_for("sip:desk@pbx.example"),
            UuiPlacement::Header
        );
    }

    #[test]
    fn tls_asked_for_without_sip_tls_or_half_configured_names_the_key() {
        let mut config = UserAgentConfig::default();
        config.sip.transport = Transport::Tls;
        let error = config.validate().expect_err("no sip.tls");
        assert!(error.contains("sip.transport"), "{error}");
        let mut config = UserAgentConfig {
            trunks: vec![trunk("a", &["+49"])],
            ..Default::default()
        };
        config.trunks[0].password = None;
        config.trunks[0].transport = Transport::Tls;
        let error = config.validate().expect_err("no sip.tls");
        assert!(error.contains("trunks[0].transport"), "{error}");
        config.sip.tls = Some(SipTlsConfig {
            ca_file: "ca.pem".into(),
            cert_file: None,
            key_file: None,
            server_name: None,
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            require_client_cert: true,
            public_address: None,
            handshake_timeout: Duration::from_secs(10),
        });
        let error = config
            .validate()
            .expect_err("a listener without a certificate");
        assert!(error.contains("sip.tls.bind"), "{error}");
    }

    #[test]
    fn validation_names_the_key_and_the_password_is_never_printed() {
        let config = UserAgentConfig {
            trunks: vec![trunk("a", &["+4x"])],
            ..Default::default()
        };
        let error = config.validate().expect_err("bad prefix");
        assert!(error.contains("trunks[0].prefixes"), "{error}");
        assert!(!format!("{config:?}").contains("secret"));
        assert!(UserAgentConfig::default().validate().is_ok());
    }
}
