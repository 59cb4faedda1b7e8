//! Per-conversation state for runtimes that send one turn at a time.
//!
//! Bounded (at most `max_conversations`, at most `max_turns` kept each) and
//! expiring (`ttl` after the last turn), so a runtime that never says goodbye
//! cannot grow the service's memory. Time is passed in, so tests control it.

use crate::{Conversation, Decision, Intent, PolicyConfig, RuntimeFlags, Speaker, Turn};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Conversations kept across all tenants. Default: 10 000.
    pub max_conversations: usize,
    /// Turns kept per conversation (oldest dropped first). Default: 50.
    pub max_turns: usize,
    /// Idle time after which a conversation is forgotten. Default: 30 min.
    pub ttl: Duration,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_conversations: 10_000,
            max_turns: 50,
            ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// One turn and whatever the runtime learnt with it.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnUpdate {
    pub turn: Turn,
    /// Replaces the conversation's language when set.
    pub language: Option<String>,
    /// Replaces the conversation's intent when set.
    pub intent: Option<Intent>,
    /// Added to the entity types seen so far.
    pub entity_types: Vec<String>,
    /// OR-ed into the flags so far: once flagged, a conversation stays flagged.
    pub flags: RuntimeFlags,
}

impl TurnUpdate {
    pub fn new(turn: Turn) -> Self {
        Self {
            turn,
            language: None,
            intent: None,
            entity_types: Vec::new(),
            flags: RuntimeFlags::default(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    conversation: Conversation,
    last_seen: Instant,
}

/// Conversations keyed by (tenant, conversation id). Thread-safe.
#[derive(Debug, Default)]
pub struct ConversationStates {
    limits: StateLimits,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl ConversationStates {
    pub fn new(limits: StateLimits) -> Self {
        Self {
            limits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> StateLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        // A panic while holding the lock cannot leave an entry half-written
        // in a way that matters here, so keep serving.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a turn and returns the conversation as now kept.
    pub fn append(
        &self,
        tenant: &str,
        conversation_id: &str,
        update: TurnUpdate,
        now: Instant,
    ) -> Conversation {
        self.with_appended(tenant, conversation_id, update, now, Conversation::clone)
    }

    /// Adds a turn and evaluates the conversation under the lock, without
    /// copying it.
    pub fn append_and_evaluate(
        &self,
        config: &PolicyConfig,
        tenant: &str,
        conversation_id: &str,
        update: TurnUpdate,
        now: Instant,
    ) -> Decision {
        self.with_appended(tenant, conversation_id, update, now, |c| {
            crate::evaluate(config, c)
        })
    }

    fn with_appended<R>(
        &self,
        tenant: &str,
        conversation_id: &str,
        update: TurnUpdate,
        now: Instant,
        f: impl FnOnce(&Conversation) -> R,
    ) -> R {
        let mut entries = self.lock();
        let key = (tenant.to_owned(), conversation_id.to_owned());
        let expired = entries
            .get(&key)
            .is_some_and(|e| now.saturating_duration_since(e.last_seen) >= self.limits.ttl);
        if expired {
            entries.remove(&key);
        }
        if !entries.contains_key(&key) && entries.len() >= self.limits.max_conversations {
            let ttl = self.limits.ttl;
            entries.retain(|_, e| now.saturating_duration_since(e.last_seen) < ttl);
            while entries.len() >= self.limits.max_conversations.max(1) {
                // Least recently seen goes; O(n), fine at these sizes and only when full.
                let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_seen)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                entries.remove(&oldest);
            }
        }
        let entry = entries.entry(key).or_insert_with(|| Entry {
            conversation: Conversation::default(),
            last_seen: now,
        });
        entry.last_seen = now;
        let c = &mut entry.conversation;
        if let Some(language) = update.language {
            c.language = language;
        }
        if update.intent.is_some() {
            c.intent = update.intent;
        }
        for t in update.entity_types {
            if !c.entity_types.contains(&t) && c.entity_types.len() < 64 {
                c.entity_types.push(t);
            }
        }
        c.flags.explicit_request |= update.flags.explicit_request;
        c.flags.multi_party_dispute |= update.flags.multi_party_dispute;
        c.flags.novel_scenario |= update.flags.novel_scenario;
        c.turns.push(update.turn);
        let max_turns = self.limits.max_turns.max(1);
        while c.turns.len() > max_turns {
            let dropped = c.turns.remove(0);
            // A request for a human must not be forgotten just because the
            // conversation went on: keep it as a flag.
            if dropped.speaker == Speaker::Customer
                && crate::explicit::detect(&crate::normalize::own_clauses(&dropped.text), &[])
                    .is_some()
            {
                c.flags.explicit_request = true;
            }
        }
        f(c)
    }

    /// The conversation, if kept and not expired.
    pub fn get(&self, tenant: &str, conversation_id: &str, now: Instant) -> Option<Conversation> {
        let entries = self.lock();
        entries
            .get(&(tenant.to_owned(), conversation_id.to_owned()))
            .filter(|e| now.saturating_duration_since(e.last_seen) < self.limits.ttl)
            .map(|e| e.conversation.clone())
    }

    /// Forgets a conversation (e.g. when it is handed off or ends).
    pub fn remove(&self, tenant: &str, conversation_id: &str) -> bool {
        self.lock()
            .remove(&(tenant.to_owned(), conversation_id.to_owned()))
            .is_some()
    }

    /// Drops expired conversations; returns how many. Call it periodically.
    pub fn purge_expired(&self, now: Instant) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        let ttl = self.limits.ttl;
        entries.retain(|_, e| now.saturating_duration_since(e.last_seen) < ttl);
        before - entries.len()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
