//! Who is there at a target now, as its connector reports it, and what
//! the AI may then promise the customer: the wait, in minutes, in the
//! customer's language ("about 4 minutes"), or that nobody can take the
//! call. Built in for en, es, fr, de and pt; for another language the
//! figures travel in the response and the message stays the plain one.

use std::time::Duration;

use super::message::MessageTemplates;

/// Voice unless the runtime says chat (a chat shares its human with other
/// chats, so the two may differ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Channel {
    #[default]
    Voice,
    Chat,
}

/// How far a connector's figures can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvailabilityBasis {
    /// The connector routes the contacts itself: exact at the answer.
    Exact,
    /// The platform's real-time statistics.
    Reported,
}

/// How an estimated wait was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEstimate {
    HandleTimes,
    PlatformStatistic,
}

/// A connector's answer; each figure only when it knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAvailability {
    pub basis: AvailabilityBasis,
    pub agents_signed_in: Option<u32>,
    pub agents_available: Option<u32>,
    pub contacts_waiting: Option<u32>,
    pub position: Option<u32>,
    pub estimated_wait: Option<Duration>,
    pub wait_estimate: Option<WaitEstimate>,
}

impl TargetAvailability {
    /// Nobody with the skills is signed in: the target would refuse the
    /// handoff (no agents) rather than keep the customer waiting.
    pub fn nobody_there(&self) -> bool {
        self.agents_signed_in == Some(0)
    }
}

/// One language's phrases.
struct Phrases {
    language: &'static str,
    /// With `{minutes}`, more than one.
    wait_minutes: &'static str,
    wait_one_minute: &'static str,
    nobody: &'static str,
}

const PHRASES: [Phrases; 5] = [
    Phrases {
        language: "en",
        wait_minutes: "The wait is about {minutes} minutes.",
        wait_one_minute: "The wait is about a minute.",
        nobody: "No one is available to take your call right now. May we call you back?",
    },
    Phrases {
        language: "es",
        wait_minutes: "La espera es de unos {minutes} minutos.",
        wait_one_minute: "La espera es de alrededor de un minuto.",
        nobody: "Ahora mismo no hay nadie disponible para atenderle. ¿Quiere que le llamemos?",
    },
    Phrases {
        language: "fr",
        wait_minutes: "L'attente est d'environ {minutes} minutes.",
        wait_one_minute: "L'attente est d'environ une minute.",
        nobody: "Personne n'est disponible pour vous répondre pour le moment. Pouvons-nous vous rappeler ?",
    },
    Phrases {
        language: "de",
        wait_minutes: "Die Wartezeit beträgt etwa {minutes} Minuten.",
        wait_one_minute: "Die Wartezeit beträgt etwa eine Minute.",
        nobody: "Gerade ist niemand erreichbar, der Ihren Anruf annehmen kann. Dürfen wir Sie zurückrufen?",
    },
    Phrases {
        language: "pt",
        wait_minutes: "A espera é de cerca de {minutes} minutos.",
        wait_one_minute: "A espera é de cerca de um minuto.",
        nobody: "No momento não há ninguém disponível para atender você. Podemos ligar de volta?",
    },
];

fn phrases(language: &str) -> Option<&'static Phrases> {
    let primary = language.split('-').next().unwrap_or_default();
    PHRASES
        .iter()
        .find(|p| p.language.eq_ignore_ascii_case(primary))
}

/// What the AI should say when a target is open, given what its connector
/// reported: `connecting` (the tenant's message in `language`) followed
/// by the wait when there is one; the "nobody can take your call" message
/// instead when nobody is there and no fallback would be tried. Each
/// phrase is the tenant's (`custom`) or the built-in one; returns the text
/// and its language, `connecting` unchanged where neither has the phrase.
pub fn open_message(
    connecting: &str,
    language: &str,
    availability: &TargetAvailability,
    has_fallback: bool,
    custom: Option<&MessageTemplates>,
) -> (String, String) {
    let plain = (connecting.to_owned(), language.to_owned());
    let built_in = phrases(language);
    let phrase = |custom: Option<&Option<String>>, built_in: Option<&'static str>| {
        custom
            .and_then(Option::as_deref)
            .or(built_in)
            .map(str::to_owned)
    };
    if availability.nobody_there() {
        if has_fallback {
            return plain;
        }
        if let Some(text) = custom.and_then(|c| c.nobody.clone()) {
            return (text, language.to_owned());
        }
        return built_in.map_or(plain, |p| (p.nobody.to_owned(), p.language.to_owned()));
    }
    let wait = match availability.estimated_wait.map(minutes) {
        None | Some(0) => None,
        Some(1) => phrase(
            custom.map(|c| &c.wait_one_minute),
            built_in.map(|p| p.wait_one_minute),
        ),
        Some(n) => phrase(custom.map(|c| &c.wait), built_in.map(|p| p.wait_minutes))
            .map(|text| text.replace("{minutes}", &n.to_string())),
    };
    wait.map_or(plain, |wait| {
        (format!("{connecting} {wait}"), language.to_owned())
    })
}

/// Whole minutes, rounded up: a promise of "about 2 minutes" for 61 s is
/// kept, one of "about a minute" would not be. No wait is 0.
fn minutes(wait: Duration) -> u64 {
    wait.as_secs().div_ceil(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(signed_in: u32, wait_secs: Option<u64>) -> TargetAvailability {
        TargetAvailability {
            basis: AvailabilityBasis::Exact,
            agents_signed_in: Some(signed_in),
            agents_available: Some(0),
            contacts_waiting: Some(0),
            position: Some(1),
            estimated_wait: wait_secs.map(Duration::from_secs),
            wait_estimate: wait_secs.map(|_| WaitEstimate::HandleTimes),
        }
    }

    const HELLO: &str = "Connecting you.";

    #[test]
    fn the_wait_follows_the_connecting_message_in_minutes_rounded_up() {
        let say = |a, language| open_message(HELLO, language, &a, false, None).0;
        assert_eq!(say(with(2, Some(0)), "en"), HELLO);
        assert_eq!(say(with(2, None), "en"), HELLO);
        assert_eq!(
            say(with(2, Some(45)), "en"),
            "Connecting you. The wait is about a minute."
        );
        assert_eq!(
            say(with(2, Some(61)), "en-GB"),
            "Connecting you. The wait is about 2 minutes."
        );
        assert_eq!(
            say(with(2, Some(240)), "es"),
            "Connecting you. La espera es de unos 4 minutos."
        );
        // No phrases for Italian: the figures travel, the text stays.
        assert_eq!(say(with(2, Some(240)), "it"), HELLO);
    }

    #[test]
    fn nobody_there_is_said_only_when_no_fallback_would_be_tried() {
        let nobody = with(0, None);
        assert_eq!(
            open_message(HELLO, "de", &nobody, true, None),
            (HELLO.to_owned(), "de".to_owned())
        );
        let (text, language) = open_message(HELLO, "de-AT", &nobody, false, None);
        assert!(text.contains("niemand"), "{text}");
        assert_eq!(language, "de");
        // Unknown counts are not "nobody".
        let unknown = TargetAvailability {
            agents_signed_in: None,
            ..with(0, None)
        };
        assert_eq!(open_message(HELLO, "en", &unknown, false, None).0, HELLO);
    }

    #[test]
    fn a_tenants_templates_replace_the_built_in_phrases_and_add_languages() {
        let custom = MessageTemplates {
            wait: Some("Un collega sarà da lei tra circa {minutes} minuti.".into()),
            nobody: Some("Nessuno è libero adesso.".into()),
            ..MessageTemplates::default()
        };
        let (text, language) =
            open_message(HELLO, "it-IT", &with(2, Some(180)), false, Some(&custom));
        assert_eq!(
            text,
            "Connecting you. Un collega sarà da lei tra circa 3 minuti."
        );
        assert_eq!(language, "it-IT");
        assert_eq!(
            open_message(HELLO, "it", &with(0, None), false, Some(&custom)).0,
            "Nessuno è libero adesso."
        );
        // A phrase the tenant left out: the built-in one, or none at all.
        assert_eq!(
            open_message(HELLO, "it", &with(2, Some(30)), false, Some(&custom)).0,
            HELLO
        );
        let english = MessageTemplates {
            wait: Some("Hang on, about {minutes} minutes.".into()),
            ..MessageTemplates::default()
        };
        assert_eq!(
            open_message(HELLO, "en", &with(2, Some(30)), false, Some(&english)).0,
            "Connecting you. The wait is about a minute."
        );
        assert_eq!(
            open_message(HELLO, "en", &with(2, Some(600)), false, Some(&english)).0,
            "Connecting you. Hang on, about 10 minutes."
        );
    }
}
