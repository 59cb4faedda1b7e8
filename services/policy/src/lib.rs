//! Baton's escalation policy: decides when a conversation with an AI agent
//! should be handed to a human, says why, and suggests where to.
//!
//! Plain Rust, no I/O: [`evaluate`] is a pure function of a [`PolicyConfig`]
//! and a [`Conversation`]. Runtimes that send one turn at a time keep their
//! conversations in [`ConversationStates`].
//!
//! The explicit request for a human always escalates; the config has no
//! switch for it, so a tenant cannot turn the AI into a persuasion loop.
#![forbid(unsafe_code)]

mod config;
mod conversation;
mod decision;
mod distress;
pub mod evaluation;
mod explicit;
mod lexicon;
mod normalize;
mod state;

pub use config::{
    ComplexityConfig, ComplianceConfig, ComplianceRule, DistressConfig, ExplicitRequestConfig,
    PolicyConfig, RepeatedFailureConfig,
};
pub use conversation::{AiOutcome, Conversation, Intent, RuntimeFlags, Speaker, Turn};
pub use decision::{Decision, Fired, Trigger};
pub use state::{ConversationStates, StateLimits, TurnUpdate};

use config::pattern_matches;

fn fired(trigger: Trigger, evidence: String) -> Fired {
    Fired {
        trigger,
        evidence,
        score: None,
        threshold: None,
        count: None,
        rule: None,
    }
}

/// Decides whether `conversation` should go to a human now.
///
/// Only turns after the last [`Speaker::Human`] turn count: once a human has
/// taken part, earlier requests and failures have been dealt with.
pub fn evaluate(config: &PolicyConfig, conversation: &Conversation) -> Decision {
    let since = conversation
        .turns
        .iter()
        .rposition(|t| t.speaker == Speaker::Human)
        .map_or(0, |i| i + 1);
    let turns = &conversation.turns[since..];
    let customer: Vec<(&Turn, Vec<Vec<String>>)> = turns
        .iter()
        .filter(|t| t.speaker == Speaker::Customer)
        .map(|t| (t, normalize::own_clauses(&t.text)))
        .collect();

    let mut decision = Decision::default();
    let mut routes: Vec<Option<&String>> = Vec::new();

    // 1. Explicit request: no switch, on purpose.
    let explicit = if conversation.flags.explicit_request {
        Some("flagged by the runtime".to_owned())
    } else {
        let extra: Vec<Vec<String>> = config
            .explicit_request
            .extra_phrases
            .iter()
            .map(|p| normalize::words(p))
            .collect();
        customer
            .iter()
            .rev()
            .find_map(|(turn, clauses)| {
                Some(match explicit::locate(clauses, &extra)? {
                    // The customer's own words, as written: tokens would
                    // lose hyphens, apostrophes and accents.
                    explicit::Hit::Words { clause, start, end } => {
                        let spanned = normalize::own_spanned_clauses(&turn.text);
                        spanned
                            .get(clause)
                            .and_then(|words| {
                                normalize::original_span(&turn.text, words, start, end)
                            })
                            .unwrap_or_else(|| {
                                normalize::mask_digits(&clauses[clause][start..=end].join(" "))
                            })
                    }
                    explicit::Hit::Zeros(zeros) => zeros,
                })
            })
            .map(|p| format!("\"{p}\""))
    };
    if let Some(evidence) = explicit {
        decision
            .fired
            .push(fired(Trigger::ExplicitRequest, evidence));
        routes.push(config.explicit_request.route.as_ref());
    }

    // 2. Distress.
    if config.distress.enabled && !customer.is_empty() {
        let mut scores = Vec::with_capacity(customer.len());
        let mut last_cues = Vec::new();
        let mut runtime = false;
        for (turn, clauses) in &customer {
            match turn.distress_score {
                Some(s) if s.is_finite() => {
                    scores.push(s.clamp(0.0, 1.0));
                    runtime = true;
                }
                _ => {
                    let (s, cues) = distress::score_turn(&turn.text, clauses);
                    scores.push(s);
                    if !cues.is_empty() {
                        last_cues = cues;
                    }
                }
            }
        }
        let (score, rising) = distress::combine(&scores);
        let threshold = config.distress.threshold;
        let mut sources = Vec::new();
        if runtime {
            sources.push("runtime score".to_owned());
        }
        if !last_cues.is_empty() {
            sources.push(format!("lexicon: {}", last_cues.join(", ")));
        }
        if rising {
            sources.push("rising across turns".to_owned());
        }
        let why = if sources.is_empty() {
            String::new()
        } else {
            format!(" ({})", sources.join("; "))
        };
        if score >= threshold {
            decision.fired.push(Fired {
                score: Some(score),
                threshold: Some(threshold),
                ..fired(
                    Trigger::Distress,
                    format!("score {score:.2} ≥ threshold {threshold:.2}{why}"),
                )
            });
            routes.push(config.distress.route.as_ref());
        } else if score >= threshold - config.distress.near_miss_margin {
            decision.near_misses.push(format!(
                "distress {score:.2} is close to threshold {threshold:.2}{why}"
            ));
        }
    }

    // 3. Complexity beyond capability.
    if config.complexity.enabled {
        let c = &config.complexity;
        let before = decision.fired.len();
        if let Some(intent) = &conversation.intent {
            if !c.capabilities.is_empty()
                && !c
                    .capabilities
                    .iter()
                    .any(|p| pattern_matches(p, &intent.name))
            {
                decision.fired.push(fired(
                    Trigger::Complexity,
                    format!("intent '{}' is not in the capability list", intent.name),
                ));
            }
            // A confidence that is not a number is no confidence at all.
            let confidence = if intent.confidence.is_finite() {
                intent.confidence
            } else {
                0.0
            };
            if confidence < c.min_confidence {
                decision.fired.push(Fired {
                    score: Some(confidence),
                    threshold: Some(c.min_confidence),
                    ..fired(
                        Trigger::Complexity,
                        format!(
                            "intent confidence {:.2} < minimum {:.2}",
                            confidence, c.min_confidence
                        ),
                    )
                });
            } else if confidence < c.min_confidence + 0.1 {
                decision.near_misses.push(format!(
                    "intent confidence {:.2} is close to the minimum {:.2}",
                    confidence, c.min_confidence
                ));
            }
        }
        if c.multi_party_dispute && conversation.flags.multi_party_dispute {
            decision.fired.push(fired(
                Trigger::Complexity,
                "multi-party dispute flagged by the runtime".to_owned(),
            ));
        }
        if c.novel_scenario && conversation.flags.novel_scenario {
            decision.fired.push(fired(
                Trigger::Complexity,
                "novel scenario flagged by the runtime".to_owned(),
            ));
        }
        if decision.fired.len() > before {
            routes.push(c.route.as_ref());
        }
    }

    // 4. Compliance: its route wins, because a licensed human is a legal need.
    let mut compliance_route = None;
    if config.compliance.enabled {
        for rule in &config.compliance.rules {
            let mut why = None;
            if let Some(intent) = &conversation.intent
                && let Some(p) = rule
                    .intents
                    .iter()
                    .find(|p| pattern_matches(p, &intent.name))
            {
                why = Some(format!("intent '{}' matches '{p}'", intent.name));
            }
            if why.is_none()
                && let Some(e) = rule.entity_types.iter().find(|e| {
                    conversation
                        .entity_types
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(e))
                })
            {
                why = Some(format!("entity type '{e}'"));
            }
            if why.is_none() {
                for p in &rule.phrases {
                    let phrase = normalize::words(p);
                    let hit = customer.iter().any(|(_, clauses)| {
                        clauses
                            .iter()
                            .any(|c| c.windows(phrase.len()).any(|w| w == phrase.as_slice()))
                    });
                    if hit {
                        why = Some(format!("phrase '{p}'"));
                        break;
                    }
                }
            }
            if let Some(why) = why {
                decision.fired.push(Fired {
                    rule: Some(rule.name.clone()),
                    ..fired(Trigger::Compliance, format!("rule '{}': {why}", rule.name))
                });
                compliance_route.get_or_insert(&rule.route);
            }
        }
    }

    // 5. Repeated failure: the trailing run of failed AI turns.
    if config.repeated_failure.enabled {
        let mut run = 0u32;
        for t in turns.iter().filter(|t| t.speaker == Speaker::Ai) {
            match t.ai_outcome {
                Some(AiOutcome::NotUnderstood | AiOutcome::Failed) => run += 1,
                Some(AiOutcome::Resolved) => run = 0,
                None => {}
            }
        }
        let threshold = config.repeated_failure.threshold;
        if run >= threshold {
            decision.fired.push(Fired {
                count: Some(run),
                threshold: Some(threshold as f32),
                ..fired(
                    Trigger::RepeatedFailure,
                    format!("{run} failures in a row (threshold {threshold})"),
                )
            });
            routes.push(config.repeated_failure.route.as_ref());
        } else if run + 1 == threshold && run > 0 {
            decision.near_misses.push(format!(
                "one more failed attempt escalates ({run} of {threshold})"
            ));
        }
    }

    decision.fired.sort_by_key(|f| f.trigger);
    decision.escalate = !decision.fired.is_empty();
    if decision.escalate {
        decision.route = compliance_route
            .or_else(|| routes.into_iter().flatten().next())
            .or(config.default_route.as_ref())
            .cloned();
        decision.customer_message = config
            .customer_message(&conversation.language)
            .map(str::to_owned);
    }
    decision
}

#[cfg(test)]
mod tests;
