//! The escalation policy behind `EvaluateEscalation`: per-tenant
//! configuration (inline, or from a file that is re-read when it changes,
//! without a restart) and the per-conversation state of runtimes that send
//! one turn at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use baton_policy::{ConversationStates, PolicyConfig, StateLimits};
use baton_policy_judge::{Judge, JudgeConfig};
use serde::Deserialize;

/// `[policy]` in the control service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// The policy of every tenant without one of its own.
    pub default: PolicyConfig,
    /// Policies by tenant.
    pub tenants: BTreeMap<String, PolicyConfig>,
    /// A TOML or YAML file with `default` and `tenants` keys; when set it
    /// replaces the inline values and is re-read when it changes. A file
    /// that fails validation is not applied: the previous policies stay.
    pub file: Option<PathBuf>,
    /// How often the file is checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Conversations kept for turn-by-turn evaluation, across tenants.
    pub max_conversations: usize,
    /// Turns kept per conversation.
    pub max_turns: usize,
    /// Idle time after which a conversation's state is forgotten.
    #[serde(with = "humantime_serde")]
    pub conversation_ttl: Duration,
    /// LLM judges by tenant, for the tenants that want one: an
    /// OpenAI-compatible chat-completions endpoint consulted only on turns
    /// the model is unsure about (`model.ambiguous_margin` of the tenant's
    /// policy), within its deadline and call budget; whatever goes wrong,
    /// the decision stays the rules' and the model's. Not in the policies
    /// file: an endpoint and its key are deployment settings.
    pub judges: BTreeMap<String, JudgeConfig>,
}

impl Default for PolicySettings {
    fn default() -> Self {
        let limits = StateLimits::default();
        Self {
            default: PolicyConfig::default(),
            tenants: BTreeMap::new(),
            file: None,
            reload_interval: Duration::from_secs(2),
            max_conversations: limits.max_conversations,
            max_turns: limits.max_turns,
            conversation_ttl: limits.ttl,
            judges: BTreeMap::new(),
        }
    }
}

/// The policies file's shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PolicyFile {
    default: PolicyConfig,
    tenants: BTreeMap<String, PolicyConfig>,
}

#[derive(Debug, Clone)]
struct Policies {
    default: Arc<PolicyConfig>,
    tenants: BTreeMap<String, Arc<PolicyConfig>>,
}

impl Policies {
    /// Validates every policy; the error names the tenant and the key.
    fn new(default: PolicyConfig, tenants: BTreeMap<String, PolicyConfig>) -> Result<Self, String> {
        default
            .validate()
            .map_err(|e| format!("policy.default.{e}"))?;
        for (tenant, policy) in &tenants {
            policy
                .validate()
                .map_err(|e| format!("policy.tenants.{tenant}.{e}"))?;
        }
        Ok(Self {
            default: Arc::new(default),
            tenants: tenants.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        })
    }

    fn load_file(path: &Path) -> Result<Self, String> {
        let file: PolicyFile = config::Config::builder()
            .add_source(config::File::from(path).required(true))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("policy.file {}: {e}", path.display()))?;
        Self::new(file.default, file.tenants)
    }
}

/// The policies in force and the conversation states.
#[derive(Debug)]
pub struct PolicyEngine {
    policies: RwLock<Policies>,
    pub states: ConversationStates,
    judges: BTreeMap<String, Judge>,
    file: Option<(PathBuf, Duration)>,
    /// The modification time of the file as loaded, taken before reading it
    /// so that a change made while it is read is picked up next time.
    loaded_modified: Option<SystemTime>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl PolicyEngine {
    /// Validates the configured policies (and the file, when set).
    pub fn new(settings: &PolicySettings) -> Result<Self, String> {
        let loaded_modified = settings.file.as_deref().and_then(modified);
        let policies = match &settings.file {
            Some(path) => Policies::load_file(path)?,
            None => Policies::new(settings.default.clone(), settings.tenants.clone())?,
        };
        if settings.max_conversations == 0 || settings.max_turns == 0 {
            return Err("policy.max_conversations and policy.max_turns: must be at least 1".into());
        }
        let mut judges = BTreeMap::new();
        for (tenant, config) in &settings.judges {
            config
                .validate()
                .map_err(|e| format!("policy.judges.{tenant}.{e}"))?;
            let judge =
                Judge::new(config.clone()).map_err(|e| format!("policy.judges.{tenant}: {e}"))?;
            judges.insert(tenant.clone(), judge);
        }
        Ok(Self {
            policies: RwLock::new(policies),
            states: ConversationStates::new(StateLimits {
                max_conversations: settings.max_conversations,
                max_turns: settings.max_turns,
                ttl: settings.conversation_ttl,
            }),
            judges,
            file: settings
                .file
                .clone()
                .map(|path| (path, settings.reload_interval)),
            loaded_modified,
        })
    }

    /// The policy of a tenant.
    pub fn for_tenant(&self, tenant: &str) -> Arc<PolicyConfig> {
        let policies = self.policies.read().unwrap_or_else(|e| e.into_inner());
        policies
            .tenants
            .get(tenant)
            .unwrap_or(&policies.default)
            .clone()
    }

    /// The tenant's LLM judge, when it has one.
    pub fn judge(&self, tenant: &str) -> Option<&Judge> {
        self.judges.get(tenant)
    }

    /// Re-reads the policies file whenever it changes, and purges expired
    /// conversation state, until the task is dropped.
    pub async fn maintain(self: Arc<Self>) {
        let interval = self
            .file
            .as_ref()
            .map_or(Duration::from_secs(30), |(_, every)| *every);
        let mut last_modified = self.loaded_modified;
        loop {
            tokio::time::sleep(interval).await;
            self.states.purge_expired(std::time::Instant::now());
            let Some((path, _)) = &self.file else {
                continue;
            };
            let now_modified = modified(path);
            if now_modified == last_modified {
                continue;
            }
            last_modified = now_modified;
            match Policies::load_file(path) {
                Ok(policies) => {
                    *self.policies.write().unwrap_or_else(|e| e.into_inner()) = policies;
                    tracing::info!(file = %path.display(), "escalation policies reloaded");
                }
                Err(error) => {
                    tracing::error!(%error, "policies file not applied; the previous policies stay")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites the file with a new modification time, so that coarse
    /// filesystem timestamps cannot hide the change.
    fn rewrite(path: &Path, text: &str, age: u64) {
        std::fs::write(path, text).expect("write");
        let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + age);
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(stamp))
            .expect("touch");
    }

    /// Polls (bounded) until `check` holds.
    async fn eventually(check: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_changed_file_is_applied_and_a_bad_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        rewrite(&path, "[default.repeated_failure]\nthreshold = 3\n", 1);
        let settings = PolicySettings {
            file: Some(path.clone()),
            reload_interval: Duration::from_millis(20),
            ..Default::default()
        };
        let engine = Arc::new(PolicyEngine::new(&settings).expect("valid"));
        assert_eq!(engine.for_tenant("any").repeated_failure.threshold, 3);
        let task = tokio::spawn(engine.clone().maintain());

        rewrite(&path, "[tenants.acme.repeated_failure]\nthreshold = 4\n", 2);
        assert!(eventually(|| engine.for_tenant("acme").repeated_failure.threshold == 4).await);
        assert_eq!(engine.for_tenant("other").repeated_failure.threshold, 2);

        // An invalid file is refused; a valid one after it is applied, so the
        // invalid one was read and kept out, not merely missed.
        rewrite(&path, "[default.distress]\nthreshold = 7\n", 3);
        rewrite(&path, "[default.distress]\nthreshold = 7\n", 4);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            engine.for_tenant("acme").repeated_failure.threshold,
            4,
            "bad file kept out"
        );
        rewrite(&path, "[default.repeated_failure]\nthreshold = 5\n", 5);
        assert!(eventually(|| engine.for_tenant("acme").repeated_failure.threshold == 5).await);
        task.abort();
    }

    #[test]
    fn errors_name_the_tenant_and_key() {
        let mut settings = PolicySettings::default();
        let mut bad = PolicyConfig::default();
        bad.distress.threshold = 2.0;
        settings.tenants.insert("acme".into(), bad);
        let error = PolicyEngine::new(&settings).expect_err("invalid");
        assert!(
            error.starts_with("policy.tenants.acme.distress.threshold"),
            "{error}"
        );
    }
}
