//! What the kit needs to know about a connector that the contract cannot
//! tell it: sample targets and how each should end. Connectors differ in how
//! a transfer progresses (a script plays steps, a queue needs an agent to
//! accept, SIP needs a far end), so the user names targets that connect,
//! fail or hold; checks without a fitting sample are skipped, never passed.

use std::path::Path;
use std::time::Duration;

use baton_proto::connector::v1::TransferEventKind;
use baton_proto::types::v1::{FailureReason, TargetKind, TransferMode, target};
use serde::Deserialize;

/// How a sample target's transfer is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// Reaches CONNECTED, then ends with COMPLETED.
    Connects,
    /// Ends with FAILED and a failure reason (optionally a given one).
    Fails,
    /// Makes no terminal event on its own (rings forever, waits in a queue
    /// no one answers): for the cancel, deadline, idempotency and shutdown
    /// checks.
    Holds,
}

impl Expectation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connects => "connects",
            Self::Fails => "fails",
            Self::Holds => "holds",
        }
    }
}

/// A transfer mode as written in a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Warm,
    Blind,
    Attended,
}

impl Mode {
    pub fn to_proto(self) -> TransferMode {
        match self {
            Self::Warm => TransferMode::Warm,
            Self::Blind => TransferMode::Blind,
            Self::Attended => TransferMode::Attended,
        }
    }
}

/// One sample target of the connector under test.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleTarget {
    /// A queue name (exactly one of queue, phone_number, sip_uri).
    pub queue: Option<String>,
    /// Skills required of the queue's agents.
    #[serde(default)]
    pub skills: Vec<String>,
    /// An E.164 number.
    pub phone_number: Option<String>,
    /// A SIP URI.
    pub sip_uri: Option<String>,
    /// How its transfers end.
    pub expect: Expectation,
    /// For `fails`: the failure reason required, e.g. `busy`, `no_agents`.
    pub reason: Option<String>,
    /// For `holds`: the event (e.g. `ringing`, `offered`) after which the
    /// transfer holds. The kit waits for it instead of guessing from a
    /// quiet spell, so a slow connector is not taken as one that holds
    /// earlier.
    pub holds_after: Option<String>,
    /// The modes this target is used with; empty: every advertised mode.
    #[serde(default)]
    pub modes: Vec<Mode>,
    /// Sent as `conversation.call.sip_gateway_uri` (the caller's leg), for
    /// connectors that transfer a live call (a SIP blind transfer needs it).
    pub sip_gateway_uri: Option<String>,
    /// Sent as `conversation.call.platform_contact_id`: the live contact a
    /// platform connector moves (a Twilio CallSid, an Amazon Connect
    /// contact id). `{handoff_hex}` is replaced by the 32 hex digits that
    /// make each of the kit's handoff ids unique, so that every transfer
    /// moves a contact of its own (e.g. `CA{handoff_hex}`).
    pub platform_contact_id: Option<String>,
}

impl SampleTarget {
    pub fn new(kind: target::Kind, expect: Expectation) -> Self {
        let mut sample = Self {
            queue: None,
            skills: Vec::new(),
            phone_number: None,
            sip_uri: None,
            expect,
            reason: None,
            holds_after: None,
            modes: Vec::new(),
            sip_gateway_uri: None,
            platform_contact_id: None,
        };
        match kind {
            target::Kind::Queue(queue) => {
                sample.queue = Some(queue.name);
                sample.skills = queue.skills;
            }
            target::Kind::PhoneNumber(number) => sample.phone_number = Some(number),
            target::Kind::SipUri(uri) => sample.sip_uri = Some(uri),
            target::Kind::Route(route) => sample.queue = Some(route),
        }
        sample
    }

    /// The target as sent in StartTransfer.
    pub fn target(&self) -> Result<target::Kind, String> {
        match (&self.queue, &self.phone_number, &self.sip_uri) {
            (Some(name), None, None) => {
                Ok(target::Kind::Queue(baton_proto::types::v1::QueueTarget {
                    name: name.clone(),
                    skills: self.skills.clone(),
                }))
            }
            (None, Some(number), None) => Ok(target::Kind::PhoneNumber(number.clone())),
            (None, None, Some(uri)) => Ok(target::Kind::SipUri(uri.clone())),
            _ => Err("a target names exactly one of queue, phone_number, sip_uri".into()),
        }
    }

    pub fn kind(&self) -> Option<TargetKind> {
        self.target().ok().map(|kind| kind_of(&kind))
    }

    /// Whether this target may be used with `mode`.
    pub fn allows(&self, mode: TransferMode) -> bool {
        self.modes.is_empty() || self.modes.iter().any(|m| m.to_proto() == mode)
    }

    /// The failure reason required, parsed.
    pub fn required_reason(&self) -> Result<Option<FailureReason>, String> {
        let Some(reason) = &self.reason else {
            return Ok(None);
        };
        let name = format!("FAILURE_REASON_{}", reason.to_ascii_uppercase());
        FailureReason::from_str_name(&name)
            .map(Some)
            .ok_or_else(|| format!("unknown failure reason {reason:?}"))
    }

    /// The event kind named by `holds_after`, parsed.
    pub fn holds_after_kind(&self) -> Result<Option<TransferEventKind>, String> {
        let Some(kind) = &self.holds_after else {
            return Ok(None);
        };
        let name = format!("TRANSFER_EVENT_KIND_{}", kind.to_ascii_uppercase());
        match TransferEventKind::from_str_name(&name) {
            Some(TransferEventKind::Unspecified) | None => Err(format!("unknown event {kind:?}")),
            Some(kind) if crate::events::is_terminal(kind as i32) => {
                Err(format!("{kind:?} is terminal: nothing holds after it"))
            }
            Some(kind) => Ok(Some(kind)),
        }
    }

    /// A short human label, e.g. `queue "support" (connects)`.
    pub fn label(&self) -> String {
        let what = match self.target() {
            Ok(target::Kind::Queue(q)) => format!("queue {:?}", q.name),
            Ok(target::Kind::PhoneNumber(n)) => format!("phone_number {n:?}"),
            Ok(target::Kind::SipUri(u)) => format!("sip_uri {u:?}"),
            _ => "invalid target".into(),
        };
        format!("{what} ({})", self.expect.as_str())
    }
}

pub fn kind_of(kind: &target::Kind) -> TargetKind {
    match kind {
        target::Kind::Queue(_) => TargetKind::Queue,
        target::Kind::PhoneNumber(_) => TargetKind::PhoneNumber,
        target::Kind::SipUri(_) => TargetKind::SipUri,
        target::Kind::Route(_) => TargetKind::Unspecified,
    }
}

fn default_transfer_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_settle() -> Duration {
    Duration::from_millis(400)
}
fn default_deadline() -> Duration {
    Duration::from_secs(1)
}
fn default_grace() -> Duration {
    Duration::from_secs(5)
}
fn default_drain() -> Duration {
    Duration::from_secs(30)
}

/// The kit's settings for one connector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Sample targets.
    #[serde(default)]
    pub targets: Vec<SampleTarget>,
    /// How long a transfer that should end may take.
    #[serde(default = "default_transfer_timeout", with = "humantime_serde")]
    pub transfer_timeout: Duration,
    /// How long a holding transfer is watched for more events before the
    /// kit takes it as holding.
    #[serde(default = "default_settle", with = "humantime_serde")]
    pub settle: Duration,
    /// The deadline the deadline check gives a holding transfer.
    #[serde(default = "default_deadline", with = "humantime_serde")]
    pub deadline: Duration,
    /// How long after a cancel, a deadline or SIGTERM the stream may take
    /// to end.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
    /// How long the connector drains on SIGTERM (its `drain_timeout`; the
    /// SDK's default is 30s): a transfer still running may keep its stream
    /// that long before the process hands it over and exits.
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain: Duration,
    /// Checks (ids or id prefixes) not to run, reported as skipped.
    #[serde(default)]
    pub skip: Vec<String>,
    /// A tenant the connector is configured not to serve (its `[server]
    /// tenants` names others): its transfers must be refused with
    /// INVALID_ARGUMENT naming `tenant`. Unset: the connector is taken to be
    /// shared by every tenant, and must serve one besides the kit's. The
    /// kit's own tenant, which the connector must serve, is `conformance`.
    #[serde(default)]
    pub foreign_tenant: Option<String>,
    /// For a connector that relays chat: a queue where a chat handoff's
    /// transfer reaches CONNECTED and stays there until the human ends it;
    /// the `chat.*` checks converse on it. Unset: they are skipped.
    #[serde(default)]
    pub chat_queue: Option<String>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            transfer_timeout: default_transfer_timeout(),
            settle: default_settle(),
            deadline: default_deadline(),
            grace: default_grace(),
            drain: default_drain(),
            skip: Vec::new(),
            foreign_tenant: None,
            chat_queue: None,
        }
    }
}

impl Profile {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let profile: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        profile.validate()?;
        Ok(profile)
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks every target names one destination and a known reason.
    pub fn validate(&self) -> Result<(), String> {
        for (index, sample) in self.targets.iter().enumerate() {
            sample
                .target()
                .map_err(|e| format!("targets[{index}]: {e}"))?;
            sample
                .required_reason()
                .map_err(|e| format!("targets[{index}].reason: {e}"))?;
            sample
                .holds_after_kind()
                .map_err(|e| format!("targets[{index}].holds_after: {e}"))?;
        }
        Ok(())
    }

    /// Parses a command-line sample, `KIND:VALUE` with KIND one of
    /// `queue`, `phone_number`, `sip_uri` (e.g. `sip_uri:sip:a@b`).
    pub fn parse_sample(text: &str, expect: Expectation) -> Result<SampleTarget, String> {
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected KIND:VALUE"))?;
        if value.is_empty() {
            return Err(format!("{text:?}: the value is empty"));
        }
        let kind = match kind {
            "queue" => target::Kind::Queue(baton_proto::types::v1::QueueTarget {
                name: value.into(),
                skills: Vec::new(),
            }),
            "phone_number" => target::Kind::PhoneNumber(value.into()),
            "sip_uri" => target::Kind::SipUri(value.into()),
            other => {
                return Err(format!(
                    "{text:?}: unknown kind {other:?} (queue, phone_number or sip_uri)"
                ));
            }
        };
        Ok(SampleTarget::new(kind, expect))
    }

    /// Whether the profile asks to skip `check`.
    pub fn skips(&self, check: &str) -> bool {
        self.skip
            .iter()
            .any(|prefix| check == prefix || check.starts_with(&format!("{prefix}.")))
    }

    pub fn samples(&self, expect: Expectation) -> impl Iterator<Item = &SampleTarget> {
        self.targets.iter().filter(move |t| t.expect == expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_names_targets_and_expectations() {
        let profile = Profile::from_toml(
            r#"
            settle = "100ms"
            skip = ["shutdown"]
            [[targets]]
            queue = "support"
            expect = "connects"
            modes = ["warm"]
            [[targets]]
            sip_uri = "sip:busy@127.0.0.1"
            expect = "fails"
            reason = "busy"
            [[targets]]
            queue = "hold"
            expect = "holds"
            holds_after = "offered"
            "#,
        )
        .expect("valid profile");
        assert_eq!(profile.settle, Duration::from_millis(100));
        assert_eq!(profile.targets[0].kind(), Some(TargetKind::Queue));
        assert!(profile.targets[0].allows(TransferMode::Warm));
        assert!(!profile.targets[0].allows(TransferMode::Blind));
        assert!(profile.targets[1].allows(TransferMode::Blind));
        assert_eq!(
            profile.targets[1].required_reason(),
            Ok(Some(FailureReason::Busy))
        );
        assert_eq!(
            profile.targets[2].holds_after_kind(),
            Ok(Some(TransferEventKind::Offered))
        );
        assert!(profile.skips("shutdown.drains"));
        assert!(!profile.skips("shutdowns"));
    }

    #[test]
    fn bad_profiles_are_refused_with_the_place() {
        let both = Profile::from_toml(
            "[[targets]]\nqueue = \"a\"\nsip_uri = \"sip:a@b\"\nexpect = \"connects\"\n",
        );
        assert!(both.expect_err("two kinds").contains("targets[0]"));
        let reason = Profile::from_toml(
            "[[targets]]\nqueue = \"a\"\nexpect = \"fails\"\nreason = \"bored\"\n",
        );
        assert!(
            reason
                .expect_err("bad reason")
                .contains("targets[0].reason")
        );
        assert!(Profile::from_toml("sttle = \"1s\"").is_err());
        for after in ["dancing", "completed"] {
            let text = format!(
                "[[targets]]\nqueue = \"a\"\nexpect = \"holds\"\nholds_after = \"{after}\"\n"
            );
            assert!(
                Profile::from_toml(&text)
                    .expect_err("bad event")
                    .contains("targets[0].holds_after")
            );
        }
    }

    #[test]
    fn command_line_samples_split_at_the_first_colon() {
        let sample = Profile::parse_sample("sip_uri:sip:a@127.0.0.1:5060", Expectation::Holds)
            .expect("valid");
        assert_eq!(sample.sip_uri.as_deref(), Some("sip:a@127.0.0.1:5060"));
        assert!(Profile::parse_sample("route:x", Expectation::Holds).is_err());
        assert!(Profile::parse_sample("queue:", Expectation::Holds).is_err());
    }
}
