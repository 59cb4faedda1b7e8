//! `[consult]`: the consult leg of an attended transfer, where the human
//! hears a spoken brief while the customer holds and accepts or declines
//! with a key.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_sip_transfer::{ConsultKeys, is_dtmf_key};
use serde::Deserialize;

/// The brief in English, with the placeholders of [`PLACEHOLDERS`]; a
/// bracketed part is left out when a placeholder in it has no value.
pub const DEFAULT_BRIEF: &str = include_str!("../../briefs/en.txt");

/// The placeholders a brief template may use.
pub const PLACEHOLDERS: [&str; 6] = [
    "summary",
    "customer_name",
    "intent",
    "reason",
    "accept_digit",
    "decline_digit",
];

/// The consult leg of attended transfers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsultConfig {
    /// The key that accepts the customer (RFC 4733 event or SIP INFO).
    /// Default `"1"`.
    pub accept_digit: char,
    /// The key that declines: the transfer fails REJECTED and the route's
    /// next target is tried. Default `"2"`.
    pub decline_digit: char,
    /// How long the human has to decide once the brief (with its repeats)
    /// was spoken; then it is a decline. Default `20s`.
    #[serde(with = "humantime_serde")]
    pub decide_timeout: Duration,
    /// How many times the brief is spoken again, after a second of
    /// silence, while the human has not decided. Default `1`, at most 5.
    pub repeat: u32,
    /// The brief: text with `{summary}`, `{customer_name}`, `{intent}`,
    /// `{reason}`, `{accept_digit}`, `{decline_digit}`; a part in `[…]` is
    /// left out when a placeholder in it has no value (not in the context,
    /// or withheld by the route's disclosure rules). Default: an English
    /// brief (`briefs/en.txt`).
    pub brief_template: String,
    /// The TTS voice of `brief_template`. Default `en-us`.
    pub voice: String,
    /// Per language of the conversation (`en-US`, else `en`): another
    /// template and voice.
    pub languages: BTreeMap<String, LanguageBrief>,
    /// The local TTS command, run as `<tts_command> -v <voice> --stdout`
    /// with the brief on its standard input, writing a 16-bit PCM WAV
    /// (espeak-ng's interface). Default `espeak-ng`.
    pub tts_command: String,
    /// How long the TTS command may take; past it, or when it fails, the
    /// consult goes on without a brief. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub tts_timeout: Duration,
    /// With more than 0, the connector advertises the structured context
    /// with this many bytes, so that the brief can speak the summary and
    /// the customer's name (what the route's disclosure rules let go);
    /// with 0, it speaks what the signalling carries (intent, reason).
    /// Default `0`.
    pub structured_context_bytes: u32,
}

/// The brief in one language.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageBrief {
    /// Default: `consult.brief_template`.
    pub brief_template: Option<String>,
    /// Default: `consult.voice`.
    pub voice: Option<String>,
}

impl Default for ConsultConfig {
    fn default() -> Self {
        Self {
            accept_digit: '1',
            decline_digit: '2',
            decide_timeout: Duration::from_secs(20),
            repeat: 1,
            brief_template: DEFAULT_BRIEF.trim().to_owned(),
            voice: "en-us".into(),
            languages: BTreeMap::new(),
            tts_command: "espeak-ng".into(),
            tts_timeout: Duration::from_secs(10),
            structured_context_bytes: 0,
        }
    }
}

impl ConsultConfig {
    /// The keys that decide.
    pub fn keys(&self) -> ConsultKeys {
        ConsultKeys {
            accept: self.accept_digit,
            decline: self.decline_digit,
        }
    }

    /// The template and voice for a conversation in `language` (a BCP 47
    /// tag): the tag's own, then its primary language's, then the default.
    pub fn brief_for(&self, language: &str) -> (&str, &str) {
        let primary = language.split(['-', '_']).next().unwrap_or_default();
        let chosen = self
            .languages
            .get(language)
            .or_else(|| self.languages.get(primary));
        let template = chosen
            .and_then(|l| l.brief_template.as_deref())
            .unwrap_or(&self.brief_template);
        let voice = chosen
            .and_then(|l| l.voice.as_deref())
            .unwrap_or(&self.voice);
        (template, voice)
    }

    /// Checks what serde cannot, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, digit) in [
            ("consult.accept_digit", self.accept_digit),
            ("consult.decline_digit", self.decline_digit),
        ] {
            if !is_dtmf_key(digit) {
                return Err(format!("{key} must be a DTMF key: 0-9, *, #, A-D"));
            }
        }
        if self.accept_digit.eq_ignore_ascii_case(&self.decline_digit) {
            return Err("consult.accept_digit and consult.decline_digit must differ".into());
        }
        if self.decide_timeout.is_zero() {
            return Err("consult.decide_timeout must be more than 0".into());
        }
        if self.tts_timeout.is_zero() {
            return Err("consult.tts_timeout must be more than 0".into());
        }
        if self.repeat > 5 {
            return Err("consult.repeat must be at most 5".into());
        }
        if self.tts_command.trim().is_empty() {
            return Err("consult.tts_command must name a command".into());
        }
        check_template("consult.brief_template", &self.brief_template)?;
        check_voice("consult.voice", &self.voice)?;
        for (language, brief) in &self.languages {
            if let Some(template) = &brief.brief_template {
                check_template(
                    &format!("consult.languages.{language}.brief_template"),
                    template,
                )?;
            }
            if let Some(voice) = &brief.voice {
                check_voice(&format!("consult.languages.{language}.voice"), voice)?;
            }
        }
        Ok(())
    }
}

/// Every placeholder is known, every brace and bracket closed.
fn check_template(key: &str, template: &str) -> Result<(), String> {
    if template.trim().is_empty() {
        return Err(format!("{key} must not be empty"));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{key}: a '{{' is not closed"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "{key}: unknown placeholder {{{name}}} (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    let mut depth = 0i32;
    for c in template.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("{key}: brackets do not nest ([…] holds no […])"));
        }
    }
    if depth != 0 {
        return Err(format!("{key}: a '[' is not closed"));
    }
    Ok(())
}

/// A voice name goes to the TTS command as one argument: letters, digits,
/// `-`, `_`, `+`, `/`.
fn check_voice(key: &str, voice: &str) -> Result<(), String> {
    let valid = !voice.is_empty()
        && !voice.starts_with('-')
        && voice
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{key} must be a voice name (letters, digits, '-', '_', '+', '/')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<ConsultConfig, String> {
        #[derive(Deserialize)]
        struct File {
            consult: ConsultConfig,
        }
        toml::from_str::<File>(toml_text)
            .map(|f| f.consult)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_are_valid_and_the_default_brief_reads_every_placeholder() {
        let config = ConsultConfig::default();
        assert_eq!(config.validate(), Ok(()));
        for name in PLACEHOLDERS {
            assert!(DEFAULT_BRIEF.contains(&format!("{{{name}}}")), "{name}");
        }
    }

    #[test]
    fn keys_and_languages_parse() {
        let config = parse(
            "[consult]\naccept_digit = \"#\"\ndecline_digit = \"*\"\ndecide_timeout = \"5s\"\n\
             [consult.languages.de]\nbrief_template = \"Übergabe. Taste {accept_digit}.\"\nvoice = \"de\"\n",
        )
        .expect("parses");
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.keys().accept, '#');
        assert_eq!(
            config.brief_for("de-DE"),
            ("Übergabe. Taste {accept_digit}.", "de")
        );
        assert_eq!(config.brief_for("fr-FR").1, "en-us");
    }

    #[test]
    fn each_invalid_key_is_named() {
        let cases = [
            ("accept_digit = \"x\"", "consult.accept_digit"),
            ("decline_digit = \"1\"", "must differ"),
            ("decide_timeout = \"0s\"", "consult.decide_timeout"),
            ("repeat = 9", "consult.repeat"),
            ("tts_command = \" \"", "consult.tts_command"),
            ("brief_template = \"{name}\"", "unknown placeholder {name}"),
            ("brief_template = \"[a [b]]\"", "consult.brief_template"),
            ("brief_template = \"[{intent}\"", "consult.brief_template"),
            ("voice = \"-x\"", "consult.voice"),
            (
                "[consult.languages.de]\nvoice = \"de; rm\"",
                "consult.languages.de.voice",
            ),
        ];
        for (line, expected) in cases {
            let config = parse(&format!("[consult]\n{line}\n")).expect(line);
            let error = config.validate().expect_err(line);
            assert!(error.contains(expected), "{line}: {error}");
        }
        assert!(parse("[consult]\nunknown = 1\n").is_err());
        assert!(parse("[consult]\naccept_digit = \"12\"\n").is_err());
    }
}
