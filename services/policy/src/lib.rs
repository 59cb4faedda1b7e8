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
mod learned;
mod lexicon;
mod normalize;
mod state;

pub use config::{
    ComplexityConfig, ComplianceConfig, ComplianceRule, DistressConfig, ExplicitRequestConfig,
    ModelConfig, PolicyConfig, RepeatedFailureConfig,
};
pub use conversation::{AiOutcome, Conversation, Intent, RuntimeFlags, Speaker, Turn};
pub use decision::{Ambiguous, Decision, Fired, Layer, Trigger};
pub use state::{ConversationStates, StateLimits, TurnUpdate};

use std::cell::OnceCell;

use config::pattern_matches;

fn fired(trigger: Trigger, evidence: String) -> Fired {
    Fired {
        trigger,
        evidence,
        score: None,
        threshold: None,
        count: None,
        rule: None,
        layer: Layer::Rules,
    }
}

/// Which layers take part: both in production; one alone when the
/// evaluation measures each against the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// The word lists: explicit requests, distress cues, compliance phrases.
    /// The runtime's flags and scores, intents and failure counts are not
    /// words and always count.
    pub rules: bool,
    /// The learned classifier, when the config enables it.
    pub model: bool,
}

impl Layers {
    pub const BOTH: Layers = Layers {
        rules: true,
        model: true,
    };
}

/// The model looks at this many of the newest customer turns: a request
/// further back would have been answered when it was made.
const MODEL_TURNS: usize = 8;

/// Decides whether `conversation` should go to a human now.
///
/// Only turns after the last [`Speaker::Human`] turn count: once a human has
/// taken part, earlier requests and failures have been dealt with.
pub fn evaluate(config: &PolicyConfig, conversation: &Conversation) -> Decision {
    evaluate_with(config, conversation, Layers::BOTH)
}

/// [`evaluate`] with only some layers: for measuring them apart.
pub fn evaluate_with(
    config: &PolicyConfig,
    conversation: &Conversation,
    layers: Layers,
) -> Decision {
    let since = conversation
        .turns
        .iter()
        .rposition(|t| t.speaker == Speaker::Human)
        .map_or(0, |i| i + 1);
    let turns = &conversation.turns[since..];
    // (index in the conversation, turn, its own clauses), oldest first.
    let customer: Vec<(usize, &Turn, Vec<Vec<String>>)> = turns
        .iter()
        .enumerate()
        .filter(|(_, t)| t.speaker == Speaker::Customer)
        .map(|(i, t)| (since + i, t, normalize::own_clauses(&t.text)))
        .collect();
    // The newest customer turns the model may read, newest first; each is
    // scored only when a trigger asks (distress reads the newest alone, and
    // none is read when the rules already found everything).
    let scored: Vec<Scored> = if layers.model && config.model.enabled {
        customer
            .iter()
            .rev()
            .take(MODEL_TURNS)
            .map(|(index, turn, _)| Scored {
                index: *index,
                turn,
                scores: OnceCell::new(),
            })
            .collect()
    } else {
        Vec::new()
    };

    let mut decision = Decision::default();

    // 1. Explicit request: no switch, on purpose.
    let extra: Vec<Vec<String>> = config
        .explicit_request
        .extra_phrases
        .iter()
        .map(|p| normalize::words(p))
        .collect();
    let mut refused = Vec::new();
    let explicit = if conversation.flags.explicit_request {
        Some(Fired {
            layer: Layer::Runtime,
            ..fired(
                Trigger::ExplicitRequest,
                "flagged by the runtime".to_owned(),
            )
        })
    } else if layers.rules {
        customer.iter().rev().find_map(|(index, turn, clauses)| {
            let hit = match explicit::locate_or_refusal(clauses, &extra) {
                explicit::Located::Request(hit) => hit,
                explicit::Located::Refused => {
                    refused.push(*index);
                    return None;
                }
                explicit::Located::Nothing => {
                    // A request only inside someone else's quoted words
                    // ("my friend said 'talk to an agent'") is theirs: the
                    // model, which reads the whole text, must not take it.
                    if scored.is_empty() || !normalize::may_quote(&turn.text) {
                        return None;
                    }
                    let all = normalize::all_clauses(&turn.text);
                    if all != *clauses
                        && explicit::locate_or_refusal(&all, &extra) != explicit::Located::Nothing
                    {
                        refused.push(*index);
                    }
                    return None;
                }
            };
            let evidence = match hit {
                // The customer's own words, as written: tokens would lose
                // hyphens, apostrophes and accents.
                explicit::Hit::Words { clause, start, end } => {
                    let spanned = normalize::own_spanned_clauses(&turn.text);
                    spanned
                        .get(clause)
                        .and_then(|words| normalize::original_span(&turn.text, words, start, end))
                        .unwrap_or_else(|| {
                            normalize::mask_digits(&clauses[clause][start..=end].join(" "))
                        })
                }
                explicit::Hit::Zeros(zeros) => zeros,
            };
            Some(fired(Trigger::ExplicitRequest, format!("\"{evidence}\"")))
        })
    } else {
        None
    };
    match explicit {
        Some(hit) => decision.fired.push(hit),
        None => {
            // Turns the rules saw refuse a human are the customer's word.
            let open = scored.iter().filter(|s| !refused.contains(&s.index));
            learned_trigger(
                &mut decision,
                open,
                Trigger::ExplicitRequest,
                Some(learned::threshold(
                    Trigger::ExplicitRequest,
                    config.model.explicit_request_threshold,
                )),
                config.model.ambiguous_margin,
            );
        }
    }

    // 2. Distress.
    if config.distress.enabled && !customer.is_empty() {
        let before = decision.fired.len();
        if layers.rules || customer.iter().any(|(_, t, _)| t.distress_score.is_some()) {
            rules_distress(config, layers, &customer, &mut decision);
        }
        if decision.fired.len() == before {
            // The current mood: the newest turn only.
            learned_trigger(
                &mut decision,
                scored.iter().take(1),
                Trigger::Distress,
                Some(learned::threshold(
                    Trigger::Distress,
                    config.model.distress_threshold,
                )),
                config.model.ambiguous_margin,
            );
        }
    }

    // 3. Complexity beyond capability.
    if config.complexity.enabled {
        let c = &config.complexity;
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
                    layer: Layer::Runtime,
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
            decision.fired.push(Fired {
                layer: Layer::Runtime,
                ..fired(
                    Trigger::Complexity,
                    "multi-party dispute flagged by the runtime".to_owned(),
                )
            });
        }
        if c.novel_scenario && conversation.flags.novel_scenario {
            decision.fired.push(Fired {
                layer: Layer::Runtime,
                ..fired(
                    Trigger::Complexity,
                    "novel scenario flagged by the runtime".to_owned(),
                )
            });
        }
        if !decision
            .fired
            .iter()
            .any(|f| f.trigger == Trigger::Complexity)
        {
            learned_trigger(
                &mut decision,
                scored.iter(),
                Trigger::Complexity,
                config.model.complexity_threshold,
                config.model.ambiguous_margin,
            );
        }
    }

    // 4. Compliance: its route wins, because a licensed human is a legal need.
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
            if why.is_none() && layers.rules {
                for p in &rule.phrases {
                    let phrase = normalize::words(p);
                    let hit = customer.iter().any(|(_, _, clauses)| {
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
            }
        }
        if !decision
            .fired
            .iter()
            .any(|f| f.trigger == Trigger::Compliance)
        {
            learned_trigger(
                &mut decision,
                scored.iter(),
                Trigger::Compliance,
                config.model.compliance_threshold,
                config.model.ambiguous_margin,
            );
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
        } else if run + 1 == threshold && run > 0 {
            decision.near_misses.push(format!(
                "one more failed attempt escalates ({run} of {threshold})"
            ));
        }
    }

    decision.settle(config, &conversation.language);
    decision
}

/// Distress by the runtime's scores and the lexicon's cues, combined across
/// the customer's turns.
fn rules_distress(
    config: &PolicyConfig,
    layers: Layers,
    customer: &[(usize, &Turn, Vec<Vec<String>>)],
    decision: &mut Decision,
) {
    let mut scores = Vec::with_capacity(customer.len());
    let mut last_cues = Vec::new();
    let mut runtime = false;
    for (_, turn, clauses) in customer {
        match turn.distress_score {
            Some(s) if s.is_finite() => {
                scores.push(s.clamp(0.0, 1.0));
                runtime = true;
            }
            _ if layers.rules => {
                let (s, cues) = distress::score_turn(&turn.text, clauses);
                scores.push(s);
                if !cues.is_empty() {
                    last_cues = cues;
                }
            }
            _ => scores.push(0.0),
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
            // The lexicon's cues make it the rules' finding; the runtime's
            // score alone makes it the runtime's.
            layer: if runtime && last_cues.is_empty() {
                Layer::Runtime
            } else {
                Layer::Rules
            },
            ..fired(
                Trigger::Distress,
                format!("score {score:.2} ≥ threshold {threshold:.2}{why}"),
            )
        });
    } else if score >= threshold - config.distress.near_miss_margin {
        decision.near_misses.push(format!(
            "distress {score:.2} is close to threshold {threshold:.2}{why}"
        ));
    }
}

/// A customer turn the model may read, scored on first use.
struct Scored<'a> {
    /// Index in the conversation's turns.
    index: usize,
    turn: &'a Turn,
    scores: OnceCell<learned::Scores>,
}

impl Scored<'_> {
    fn get(&self, trigger: Trigger) -> f32 {
        self.scores
            .get_or_init(|| learned::score(&self.turn.text))
            .get(trigger)
    }
}

/// Fires `trigger` on the first of `scored` turns at or above `threshold`
/// (none: the model is off for it), or notes the closest as ambiguous.
fn learned_trigger<'a>(
    decision: &mut Decision,
    scored: impl Iterator<Item = &'a Scored<'a>>,
    trigger: Trigger,
    threshold: Option<f32>,
    margin: f32,
) {
    let Some(threshold) = threshold else {
        return;
    };
    let mut closest: Option<(usize, f32)> = None;
    for turn in scored {
        let score = turn.get(trigger);
        if score >= threshold {
            decision.fired.push(Fired {
                score: Some(score),
                threshold: Some(threshold),
                layer: Layer::Model,
                ..fired(
                    trigger,
                    format!("model: {}", learned::evidence(&turn.turn.text, trigger)),
                )
            });
            return;
        }
        if score >= threshold - margin && closest.is_none_or(|(_, s)| score > s) {
            closest = Some((turn.index, score));
        }
    }
    if let Some((turn, score)) = closest {
        decision.ambiguous.push(Ambiguous {
            trigger,
            score,
            threshold,
            turn,
        });
        decision.near_misses.push(format!(
            "model: {} {score:.2} is close to threshold {threshold:.2}",
            trigger.as_str()
        ));
    }
}

impl Decision {
    /// Adds what a judge found on an ambiguous turn, and settles the
    /// decision again (escalate, route, message).
    pub fn add_judged(
        &mut self,
        config: &PolicyConfig,
        language: &str,
        trigger: Trigger,
        reason: &str,
    ) {
        if self.fired.iter().any(|f| f.trigger == trigger) {
            return;
        }
        let score = self.ambiguous.iter().find(|a| a.trigger == trigger);
        self.fired.push(Fired {
            score: score.map(|a| a.score),
            threshold: score.map(|a| a.threshold),
            layer: Layer::Judge,
            ..fired(
                trigger,
                format!("judge: {}", normalize::mask_digits(reason)),
            )
        });
        self.ambiguous.retain(|a| a.trigger != trigger);
        self.settle(config, language);
    }

    /// Order, escalate, route and the customer's message, from what fired.
    fn settle(&mut self, config: &PolicyConfig, language: &str) {
        self.fired.sort_by_key(|f| f.trigger);
        self.escalate = !self.fired.is_empty();
        if !self.escalate {
            return;
        }
        let route_of = |f: &Fired| match f.trigger {
            Trigger::ExplicitRequest => config.explicit_request.route.as_ref(),
            Trigger::Distress => config.distress.route.as_ref(),
            Trigger::Complexity => config.complexity.route.as_ref(),
            Trigger::Compliance => match &f.rule {
                Some(name) => config
                    .compliance
                    .rules
                    .iter()
                    .find(|r| &r.name == name)
                    .map(|r| &r.route),
                None => config.model.compliance_route.as_ref(),
            },
            Trigger::RepeatedFailure => config.repeated_failure.route.as_ref(),
        };
        // A compliance route first: a licensed human is a legal need.
        let compliance = self
            .fired
            .iter()
            .filter(|f| f.trigger == Trigger::Compliance)
            .find_map(route_of);
        self.route = compliance
            .or_else(|| self.fired.iter().find_map(route_of))
            .or(config.default_route.as_ref())
            .cloned();
        self.customer_message = config.customer_message(language).map(str::to_owned);
    }
}

#[cfg(test)]
mod tests;
