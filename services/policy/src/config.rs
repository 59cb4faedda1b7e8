//! Per-tenant policy configuration.
//!
//! Every key has a default, so `{}` is a complete, sensible config. Unknown keys
//! are rejected, which is also why `explicit_request.enabled` does not exist:
//! writing it is an error rather than a silently ignored switch, because a
//! customer who asks for a human must always get one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub explicit_request: ExplicitRequestConfig,
    pub distress: DistressConfig,
    pub complexity: ComplexityConfig,
    pub compliance: ComplianceConfig,
    pub repeated_failure: RepeatedFailureConfig,
    /// The learned layer: a classifier of each customer turn, consulted after
    /// the rules (`baton-policy-model`).
    pub model: ModelConfig,
    /// Route used when no fired trigger names one. Default: none (the caller's
    /// own routing decides).
    pub default_route: Option<String>,
    /// What to say when escalating, by language (primary subtag: `en`, `es`…).
    /// Default: the `customer_message` of each language file in
    /// `services/policy/data/` (en, es, fr, de, pt today). Falls back to `en`.
    pub customer_messages: BTreeMap<String, String>,
}

/// The explicit request for a human. Always on; there is deliberately no
/// `enabled` and no threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitRequestConfig {
    /// Route for explicit requests. Default: none.
    pub route: Option<String>,
    /// Extra tenant phrases that mean "a human, please" (e.g. a brand name for
    /// the support team), matched on whole words after case and accent folding.
    /// Default: empty.
    pub extra_phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistressConfig {
    /// Default: true.
    pub enabled: bool,
    /// Escalate when the score is at or above this, 0..=1. Default: 0.7.
    pub threshold: f32,
    /// Report a near miss when the score is within this of the threshold.
    /// Default: 0.15.
    pub near_miss_margin: f32,
    /// Default: none.
    pub route: Option<String>,
}

impl Default for DistressConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.7,
            near_miss_margin: 0.15,
            route: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplexityConfig {
    /// Default: true.
    pub enabled: bool,
    /// Intents the AI can handle: exact names, `prefix.*` (the prefix itself
    /// and everything under it) or `*`. Default: empty, meaning the capability
    /// check is off (every intent is in scope).
    pub capabilities: Vec<String>,
    /// Escalate when the runtime's intent confidence is below this, 0..=1.
    /// Default: 0.5.
    pub min_confidence: f32,
    /// Escalate when the runtime flags a multi-party dispute. Default: true.
    pub multi_party_dispute: bool,
    /// Escalate when the runtime flags a novel scenario. Default: true.
    pub novel_scenario: bool,
    /// Default: none.
    pub route: Option<String>,
}

impl Default for ComplexityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            capabilities: Vec::new(),
            min_confidence: 0.5,
            multi_party_dispute: true,
            novel_scenario: true,
            route: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    /// Default: true (with no rules, nothing fires).
    pub enabled: bool,
    /// Default: empty.
    pub rules: Vec<ComplianceRule>,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: Vec::new(),
        }
    }
}

/// A rule that requires a specific human. Fires when any of its matchers does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceRule {
    /// Shown in evidence and records. Required.
    pub name: String,
    /// Where to hand off, e.g. `licensed-advisor`. Required.
    pub route: String,
    /// Intent patterns, same syntax as `complexity.capabilities`.
    pub intents: Vec<String>,
    /// Entity types, e.g. `ssn`, `diagnosis`.
    pub entity_types: Vec<String>,
    /// Phrases in the customer's words, whole words, case and accent folded.
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepeatedFailureConfig {
    /// Default: true.
    pub enabled: bool,
    /// Consecutive AI failures that escalate, 2..=20. Default: 2.
    pub threshold: u32,
    /// Default: none.
    pub route: Option<String>,
}

impl Default for RepeatedFailureConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 2,
            route: None,
        }
    }
}

/// The learned classifier's part in the decision. It adds what the rules
/// missed; it never removes what they found, and a request the rules saw
/// refused in the customer's own words ("I don't need a person") is not
/// overridden by it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Default: true. Off, the rules alone decide.
    pub enabled: bool,
    /// A turn whose explicit-request probability is at or above this asks
    /// for a human, 0..=1. Default: the threshold trained with the weights
    /// (chosen for precision on the training data).
    pub explicit_request_threshold: Option<f32>,
    /// The same for distress. Default: the trained threshold. Applies only
    /// when `distress.enabled`.
    pub distress_threshold: Option<f32>,
    /// The same for complexity cues in the customer's words. Default: none
    /// (off): complexity is the runtime's intent and flags unless set.
    pub complexity_threshold: Option<f32>,
    /// The same for regulated topics. Default: none (off): compliance is the
    /// tenant's rules unless set.
    pub compliance_threshold: Option<f32>,
    /// Route when the model finds a regulated topic. Default: none.
    pub compliance_route: Option<String>,
    /// A probability within this below a threshold makes the turn ambiguous:
    /// listed in the decision, for a judge to look at (see the control
    /// service's `policy.judges`). 0..=1, default 0.25.
    pub ambiguous_margin: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            explicit_request_threshold: None,
            distress_threshold: None,
            complexity_threshold: None,
            compliance_threshold: None,
            compliance_route: None,
            ambiguous_margin: 0.25,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        // One sentence per language file in data/.
        let customer_messages = crate::lexicon::lexicon()
            .customer_messages
            .iter()
            .map(|(tag, message)| ((*tag).to_owned(), message.clone()))
            .collect();
        Self {
            explicit_request: ExplicitRequestConfig::default(),
            distress: DistressConfig::default(),
            complexity: ComplexityConfig::default(),
            compliance: ComplianceConfig::default(),
            repeated_failure: RepeatedFailureConfig::default(),
            model: ModelConfig::default(),
            default_route: None,
            customer_messages,
        }
    }
}

fn unit_interval(key: &str, value: f32) -> Result<(), String> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{key}: must be between 0 and 1, got {value}"))
    }
}

fn route(key: &str, value: &Option<String>) -> Result<(), String> {
    match value {
        Some(r) if r.trim().is_empty() => Err(format!("{key}: must not be empty when set")),
        _ => Ok(()),
    }
}

/// Checks an intent pattern: `name`, `prefix.*` or `*`.
pub(crate) fn validate_pattern(key: &str, pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err(format!("{key}: must not be empty"));
    }
    if pattern == "*" {
        return Ok(());
    }
    let body = pattern.strip_suffix(".*").unwrap_or(pattern);
    if body.is_empty() || body.contains('*') {
        return Err(format!(
            "{key}: '*' is only allowed alone or as a trailing '.*', got '{pattern}'"
        ));
    }
    Ok(())
}

/// Does `intent` match `pattern` (`name`, `prefix.*`, `*`)? Case-insensitive.
pub(crate) fn pattern_matches(pattern: &str, intent: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => {
            intent.eq_ignore_ascii_case(prefix)
                || (intent.len() > prefix.len()
                    && intent.is_char_boundary(prefix.len())
                    && intent[..prefix.len()].eq_ignore_ascii_case(prefix)
                    && intent.as_bytes()[prefix.len()] == b'.')
        }
        None => intent.eq_ignore_ascii_case(pattern),
    }
}

impl PolicyConfig {
    /// Parses JSON and validates; errors name the key.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let config: PolicyConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the error names the exact key, e.g.
    /// `distress.threshold: must be between 0 and 1, got 1.5`.
    pub fn validate(&self) -> Result<(), String> {
        route("explicit_request.route", &self.explicit_request.route)?;
        for (i, p) in self.explicit_request.extra_phrases.iter().enumerate() {
            if crate::normalize::words(p).is_empty() {
                return Err(format!(
                    "explicit_request.extra_phrases[{i}]: must contain a word"
                ));
            }
        }
        unit_interval("distress.threshold", self.distress.threshold)?;
        unit_interval("distress.near_miss_margin", self.distress.near_miss_margin)?;
        route("distress.route", &self.distress.route)?;
        for (i, p) in self.complexity.capabilities.iter().enumerate() {
            validate_pattern(&format!("complexity.capabilities[{i}]"), p)?;
        }
        unit_interval("complexity.min_confidence", self.complexity.min_confidence)?;
        route("complexity.route", &self.complexity.route)?;
        for (i, rule) in self.compliance.rules.iter().enumerate() {
            let key = format!("compliance.rules[{i}]");
            if rule.name.trim().is_empty() {
                return Err(format!("{key}.name: must not be empty"));
            }
            if rule.route.trim().is_empty() {
                return Err(format!("{key}.route: must not be empty"));
            }
            if rule.intents.is_empty() && rule.entity_types.is_empty() && rule.phrases.is_empty() {
                return Err(format!(
                    "{key}: needs at least one of intents, entity_types, phrases"
                ));
            }
            for (j, p) in rule.intents.iter().enumerate() {
                validate_pattern(&format!("{key}.intents[{j}]"), p)?;
            }
            for (j, e) in rule.entity_types.iter().enumerate() {
                if e.trim().is_empty() {
                    return Err(format!("{key}.entity_types[{j}]: must not be empty"));
                }
            }
            for (j, p) in rule.phrases.iter().enumerate() {
                if crate::normalize::words(p).is_empty() {
                    return Err(format!("{key}.phrases[{j}]: must contain a word"));
                }
            }
        }
        if !(2..=20).contains(&self.repeated_failure.threshold) {
            return Err(format!(
                "repeated_failure.threshold: must be between 2 and 20, got {}",
                self.repeated_failure.threshold
            ));
        }
        route("repeated_failure.route", &self.repeated_failure.route)?;
        let m = &self.model;
        for (key, threshold) in [
            (
                "model.explicit_request_threshold",
                m.explicit_request_threshold,
            ),
            ("model.distress_threshold", m.distress_threshold),
            ("model.complexity_threshold", m.complexity_threshold),
            ("model.compliance_threshold", m.compliance_threshold),
        ] {
            if let Some(t) = threshold {
                unit_interval(key, t)?;
            }
        }
        unit_interval("model.ambiguous_margin", m.ambiguous_margin)?;
        route("model.compliance_route", &m.compliance_route)?;
        route("default_route", &self.default_route)?;
        for (lang, msg) in &self.customer_messages {
            if msg.trim().is_empty() {
                return Err(format!("customer_messages.{lang}: must not be empty"));
            }
        }
        Ok(())
    }

    /// The message for a BCP 47 tag: exact, then primary subtag, then `en`.
    pub fn customer_message(&self, language: &str) -> Option<&str> {
        let lower = language.to_ascii_lowercase();
        let primary = lower.split(['-', '_']).next().unwrap_or("");
        self.customer_messages
            .get(&lower)
            .or_else(|| self.customer_messages.get(primary))
            .or_else(|| self.customer_messages.get("en"))
            .map(String::as_str)
    }
}
