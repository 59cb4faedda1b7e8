//! What the AI tells the customer while the handoff starts, and each
//! tenant's own wording of what it is told about the wait and the hours
//! (`[messages.templates.<language>]`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Built-in translations of the customer message. Configuration may add
/// languages or replace these.
pub const BUILT_IN_MESSAGES: &[(&str, &str)] = &[
    (
        "en",
        "I'm connecting you with a specialist who has the details of our conversation. You won't need to repeat anything.",
    ),
    (
        "es",
        "Le comunico con un especialista que tiene los detalles de nuestra conversación. No tendrá que repetir nada.",
    ),
    (
        "fr",
        "Je vous mets en relation avec un spécialiste qui a le détail de notre conversation. Vous n'aurez rien à répéter.",
    ),
    (
        "de",
        "Ich verbinde Sie mit einem Spezialisten, der die Einzelheiten unseres Gesprächs kennt. Sie müssen nichts wiederholen.",
    ),
    (
        "pt",
        "Vou transferir você para um especialista que já tem os detalhes da nossa conversa. Você não precisará repetir nada.",
    ),
];

/// Customer messages by language tag (lower case).
#[derive(Debug, Clone)]
pub struct CustomerMessages {
    by_language: BTreeMap<String, String>,
    default_language: String,
    templates: BTreeMap<String, MessageTemplates>,
}

/// A tenant's wording, in one language, of what the AI says about the wait
/// and the hours; each phrase left out is the built-in one (en, es, fr, de,
/// pt). For another language, the templates given make it spoken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageTemplates {
    /// After the connecting message when the wait is 2 minutes or more;
    /// with `{minutes}`.
    pub wait: Option<String>,
    /// After the connecting message when the wait is about a minute.
    pub wait_one_minute: Option<String>,
    /// Nobody can take the call and no fallback would be tried.
    pub nobody: Option<String>,
    /// Every target is closed; with `{when}`, the next opening in the
    /// target's time zone ("tomorrow at 08:00"; `2027-01-04 08:00` in a
    /// language without built-in phrases).
    pub opens_again: Option<String>,
    /// Every target is closed, and none opens within a year.
    pub closed: Option<String>,
}

impl MessageTemplates {
    /// `other`'s phrases over these, phrase by phrase.
    pub fn overlaid(&self, other: &MessageTemplates) -> MessageTemplates {
        let pick = |mine: &Option<String>, theirs: &Option<String>| theirs.clone().or(mine.clone());
        MessageTemplates {
            wait: pick(&self.wait, &other.wait),
            wait_one_minute: pick(&self.wait_one_minute, &other.wait_one_minute),
            nobody: pick(&self.nobody, &other.nobody),
            opens_again: pick(&self.opens_again, &other.opens_again),
            closed: pick(&self.closed, &other.closed),
        }
    }

    /// Each phrase is non-empty and holds only its own placeholder (the
    /// required one where there is one); the error names `key`'s phrase.
    pub fn check(&self, key: &str) -> Result<(), String> {
        let phrases = [
            ("wait", &self.wait, Some("{minutes}")),
            ("wait_one_minute", &self.wait_one_minute, None),
            ("nobody", &self.nobody, None),
            ("opens_again", &self.opens_again, Some("{when}")),
            ("closed", &self.closed, None),
        ];
        for (name, text, placeholder) in phrases {
            let Some(text) = text else { continue };
            let without = placeholder.map_or(text.clone(), |p| text.replace(p, ""));
            if text.trim().is_empty() {
                return Err(format!("{key}.{name}: is empty"));
            }
            if let Some(placeholder) = placeholder
                && !text.contains(placeholder)
            {
                return Err(format!("{key}.{name}: must contain {placeholder}"));
            }
            if without.contains('{') || without.contains('}') {
                let allowed = placeholder.unwrap_or("no placeholder");
                return Err(format!("{key}.{name}: only {allowed} may be in braces"));
            }
        }
        Ok(())
    }
}

impl CustomerMessages {
    /// The built-in messages, overridden and extended by `configured`.
    pub fn new(
        configured: &BTreeMap<String, String>,
        default_language: &str,
    ) -> Result<Self, String> {
        let mut by_language: BTreeMap<String, String> = BUILT_IN_MESSAGES
            .iter()
            .map(|(language, text)| (language.to_string(), text.to_string()))
            .collect();
        for (language, text) in configured {
            by_language.insert(language.to_ascii_lowercase(), text.clone());
        }
        let default_language = default_language.to_ascii_lowercase();
        if !by_language.contains_key(&default_language) {
            return Err(format!(
                "messages.default_language: no message is configured for {default_language:?}"
            ));
        }
        Ok(Self {
            by_language,
            default_language,
            templates: BTreeMap::new(),
        })
    }

    /// These messages with `templates` by language tag, each checked; the
    /// error names `key`'s language and phrase.
    pub fn with_templates(
        mut self,
        templates: &BTreeMap<String, MessageTemplates>,
        key: &str,
    ) -> Result<Self, String> {
        for (language, phrases) in templates {
            if !baton_request_validation::rules::is_language_tag(language) {
                return Err(format!("{key}.{language}: is not a BCP 47 language tag"));
            }
            phrases.check(&format!("{key}.{language}"))?;
            self.templates
                .insert(language.to_ascii_lowercase(), phrases.clone());
        }
        Ok(self)
    }

    /// The tenant's templates for a conversation's language: the exact tag,
    /// then its primary language.
    pub fn templates_for(&self, language: &str) -> Option<&MessageTemplates> {
        let language = language.to_ascii_lowercase();
        let primary = language.split('-').next().unwrap_or_default();
        [language.as_str(), primary]
            .into_iter()
            .find_map(|tag| self.templates.get(tag))
    }

    /// The message for a conversation's language: the exact tag, then its
    /// primary language (`es-MX` → `es`), then the default language.
    /// Returns the text and the language it is in.
    pub fn for_language(&self, language: &str) -> (&str, &str) {
        let language = language.to_ascii_lowercase();
        let primary = language.split('-').next().unwrap_or_default();
        [language.as_str(), primary, self.default_language.as_str()]
            .into_iter()
            .find_map(|tag| self.by_language.get_key_value(tag))
            .map(|(tag, text)| (text.as_str(), tag.as_str()))
            .unwrap_or(("", ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_primary_then_default() {
        let mut configured = BTreeMap::new();
        configured.insert(
            "es-MX".to_string(),
            "Lo comunico con un especialista.".to_string(),
        );
        let messages = CustomerMessages::new(&configured, "en").expect("messages");
        assert_eq!(messages.for_language("es-MX").1, "es-mx");
        assert_eq!(messages.for_language("es-ES").1, "es");
        assert!(messages.for_language("fr-CA").0.contains("spécialiste"));
        assert_eq!(messages.for_language("ja").1, "en");
        assert_eq!(messages.for_language("").1, "en");
        assert!(messages.for_language("").0.contains("won't need to repeat"));
    }

    #[test]
    fn templates_are_found_by_tag_then_primary_language_and_checked() {
        let italian = MessageTemplates {
            opens_again: Some("Siamo chiusi; riapriamo {when}.".into()),
            ..MessageTemplates::default()
        };
        let templates = BTreeMap::from([("it".to_string(), italian.clone())]);
        let messages = CustomerMessages::new(&BTreeMap::new(), "en")
            .expect("messages")
            .with_templates(&templates, "messages.templates")
            .expect("templates");
        assert_eq!(messages.templates_for("it-CH"), Some(&italian));
        assert_eq!(messages.templates_for("en"), None);

        let refused = |phrases: MessageTemplates, language: &str| {
            CustomerMessages::new(&BTreeMap::new(), "en")
                .expect("messages")
                .with_templates(
                    &BTreeMap::from([(language.to_string(), phrases)]),
                    "messages.templates",
                )
                .expect_err("refused")
        };
        let wait = |text: &str| MessageTemplates {
            wait: Some(text.into()),
            ..MessageTemplates::default()
        };
        assert_eq!(
            refused(wait("About 4 minutes."), "en"),
            "messages.templates.en.wait: must contain {minutes}"
        );
        assert_eq!(
            refused(wait("About {minutes} minutes, {name}."), "en"),
            "messages.templates.en.wait: only {minutes} may be in braces"
        );
        assert_eq!(
            refused(
                MessageTemplates {
                    closed: Some(" ".into()),
                    ..MessageTemplates::default()
                },
                "en"
            ),
            "messages.templates.en.closed: is empty"
        );
        assert_eq!(
            refused(wait("{minutes}"), "not a tag"),
            "messages.templates.not a tag: is not a BCP 47 language tag"
        );
    }

    #[test]
    fn a_tenants_phrases_overlay_the_shared_ones_phrase_by_phrase() {
        let shared = MessageTemplates {
            wait: Some("Shared {minutes}.".into()),
            closed: Some("Shared closed.".into()),
            ..MessageTemplates::default()
        };
        let tenant = MessageTemplates {
            closed: Some("Tenant closed.".into()),
            ..MessageTemplates::default()
        };
        let both = shared.overlaid(&tenant);
        assert_eq!(both.wait.as_deref(), Some("Shared {minutes}."));
        assert_eq!(both.closed.as_deref(), Some("Tenant closed."));
    }

    #[test]
    fn the_default_language_needs_a_message() {
        assert!(CustomerMessages::new(&BTreeMap::new(), "it").is_err());
    }
}
