//! What the AI tells the customer while the handoff starts.

use std::collections::BTreeMap;

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
        })
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
    fn the_default_language_needs_a_message() {
        assert!(CustomerMessages::new(&BTreeMap::new(), "it").is_err());
    }
}
