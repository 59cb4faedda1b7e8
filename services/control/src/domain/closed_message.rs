//! What the AI tells the customer when no target of the plan is open: when
//! it opens again, in the zone's local time ("tomorrow at 08:00"), and an
//! offer to call back. Built in for en, es, fr, de and pt; another
//! language gets the English text.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::message::MessageTemplates;

/// One language's phrases.
struct Phrases {
    language: &'static str,
    /// With `{when}`.
    opens_again: &'static str,
    /// No opening within a year.
    closed: &'static str,
    today: &'static str,
    tomorrow: &'static str,
    /// "on Monday"…, Monday first.
    weekdays: [&'static str; 7],
    /// Before a date further than a week ("on 2027-01-04").
    on_date: &'static str,
    /// Before the time ("at 08:00").
    at: &'static str,
}

const PHRASES: [Phrases; 5] = [
    Phrases {
        language: "en",
        opens_again: "We're closed right now; we open again {when}. May we call you back then?",
        closed: "We're closed right now, and no one can take your call.",
        today: "today",
        tomorrow: "tomorrow",
        weekdays: [
            "on Monday",
            "on Tuesday",
            "on Wednesday",
            "on Thursday",
            "on Friday",
            "on Saturday",
            "on Sunday",
        ],
        on_date: "on",
        at: "at",
    },
    Phrases {
        language: "es",
        opens_again: "Ahora mismo estamos cerrados; abrimos de nuevo {when}. ¿Quiere que le llamemos entonces?",
        closed: "Ahora mismo estamos cerrados y nadie puede atenderle.",
        today: "hoy",
        tomorrow: "mañana",
        weekdays: [
            "el lunes",
            "el martes",
            "el miércoles",
            "el jueves",
            "el viernes",
            "el sábado",
            "el domingo",
        ],
        on_date: "el",
        at: "a las",
    },
    Phrases {
        language: "fr",
        opens_again: "Nous sommes fermés pour le moment ; nous rouvrons {when}. Pouvons-nous vous rappeler à ce moment-là ?",
        closed: "Nous sommes fermés pour le moment et personne ne peut vous répondre.",
        today: "aujourd'hui",
        tomorrow: "demain",
        weekdays: [
            "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
        ],
        on_date: "le",
        at: "à",
    },
    Phrases {
        language: "de",
        opens_again: "Wir haben gerade geschlossen; wir öffnen wieder {when}. Dürfen wir Sie dann zurückrufen?",
        closed: "Wir haben gerade geschlossen, und niemand kann Ihren Anruf annehmen.",
        today: "heute",
        tomorrow: "morgen",
        weekdays: [
            "am Montag",
            "am Dienstag",
            "am Mittwoch",
            "am Donnerstag",
            "am Freitag",
            "am Samstag",
            "am Sonntag",
        ],
        on_date: "am",
        at: "um",
    },
    Phrases {
        language: "pt",
        opens_again: "Estamos fechados agora; abrimos novamente {when}. Podemos ligar para você nesse horário?",
        closed: "Estamos fechados agora e ninguém pode atender você.",
        today: "hoje",
        tomorrow: "amanhã",
        weekdays: [
            "na segunda-feira",
            "na terça-feira",
            "na quarta-feira",
            "na quinta-feira",
            "na sexta-feira",
            "no sábado",
            "no domingo",
        ],
        on_date: "em",
        at: "às",
    },
];

/// The message for a customer speaking `language` (a BCP 47 tag) at
/// `now`, when the next opening is `opens_at` in `zone` (none within a
/// year: `None`), in the tenant's words (`custom`) where it has them.
/// Returns the text and the language it is in.
pub fn closed_message(
    language: &str,
    now: Timestamp,
    opens_at: Option<(Timestamp, &TimeZone)>,
    custom: Option<&MessageTemplates>,
) -> (String, String) {
    let primary = language
        .split('-')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let built_in = PHRASES.iter().find(|phrases| phrases.language == primary);
    let phrases = built_in.unwrap_or(&PHRASES[0]);
    let Some((opens_at, zone)) = opens_at else {
        return match custom.and_then(|c| c.closed.clone()) {
            Some(text) => (text, language.to_owned()),
            None => (phrases.closed.to_owned(), phrases.language.to_owned()),
        };
    };
    if let Some(template) = custom.and_then(|c| c.opens_again.as_deref()) {
        let when = match built_in {
            Some(phrases) => when(phrases, now, opens_at, zone),
            // No words for "tomorrow" in this language: the date and time.
            None => opens_at
                .to_zoned_datetime(zone.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string(),
        };
        return (template.replace("{when}", &when), language.to_owned());
    }
    (
        phrases
            .opens_again
            .replace("{when}", &when(phrases, now, opens_at, zone)),
        phrases.language.to_owned(),
    )
}

/// The next opening in `phrases`' words: "tomorrow at 08:00".
fn when(phrases: &Phrases, now: Timestamp, opens_at: Timestamp, zone: &TimeZone) -> String {
    let today = now.to_zoned_datetime(zone.clone()).date();
    let opening = opens_at.to_zoned_datetime(zone.clone());
    let days = (opening.date() - today).get_days();
    let day = match days {
        0 => phrases.today.to_owned(),
        1 => phrases.tomorrow.to_owned(),
        2..=6 => {
            let weekday = opening.date().weekday().to_monday_zero_offset();
            phrases.weekdays[usize::from(weekday.unsigned_abs())].to_owned()
        }
        _ => format!("{} {}", phrases.on_date, opening.date()),
    };
    format!("{day} {} {}", phrases.at, opening.time().strftime("%H:%M"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(instant: &str) -> Timestamp {
        instant.parse().expect("instant")
    }

    #[test]
    fn the_next_opening_is_said_in_local_time_and_the_customers_language() {
        let madrid = TimeZone::get("Europe/Madrid").expect("zone");
        // Saturday 5 December 2026, 20:00 in Madrid.
        let now = at("2026-12-05T19:00:00Z");
        let monday = Some((at("2026-12-07T07:00:00Z"), &madrid));
        let (text, language) = closed_message("es-ES", now, monday, None);
        assert_eq!(language, "es");
        assert!(text.contains("el lunes a las 08:00"), "{text}");
        let sunday = Some((at("2026-12-06T09:00:00Z"), &madrid));
        assert!(
            closed_message("en-GB", now, sunday, None)
                .0
                .contains("tomorrow at 10:00")
        );
        let later = Some((at("2026-12-05T19:30:00Z"), &madrid));
        assert!(
            closed_message("de", now, later, None)
                .0
                .contains("heute um 20:30")
        );
        let january = Some((at("2027-01-04T07:00:00Z"), &madrid));
        assert!(
            closed_message("fr", now, january, None)
                .0
                .contains("le 2027-01-04 à 08:00")
        );
    }

    #[test]
    fn an_unknown_language_gets_english_and_no_opening_says_so() {
        let (text, language) = closed_message("ja-JP", at("2026-12-05T19:00:00Z"), None, None);
        assert_eq!(language, "en");
        assert!(text.contains("no one can take your call"), "{text}");
    }

    #[test]
    fn a_tenants_templates_say_it_their_way_in_any_language() {
        let madrid = TimeZone::get("Europe/Madrid").expect("zone");
        let now = at("2026-12-05T19:00:00Z");
        let monday = Some((at("2026-12-07T07:00:00Z"), &madrid));
        let spanish = MessageTemplates {
            opens_again: Some("Volvemos {when}. ¿Le llamamos?".into()),
            ..MessageTemplates::default()
        };
        assert_eq!(
            closed_message("es", now, monday, Some(&spanish)),
            (
                "Volvemos el lunes a las 08:00. ¿Le llamamos?".into(),
                "es".into()
            )
        );
        let italian = MessageTemplates {
            opens_again: Some("Siamo chiusi; riapriamo il {when}.".into()),
            closed: Some("Siamo chiusi.".into()),
            ..MessageTemplates::default()
        };
        assert_eq!(
            closed_message("it-IT", now, monday, Some(&italian)),
            (
                "Siamo chiusi; riapriamo il 2026-12-07 08:00.".into(),
                "it-IT".into()
            )
        );
        assert_eq!(
            closed_message("it", now, None, Some(&italian)).0,
            "Siamo chiusi."
        );
        // A phrase the tenant left out is the built-in one.
        assert!(
            closed_message("es", now, None, Some(&spanish))
                .0
                .contains("nadie puede atenderle")
        );
    }
}
