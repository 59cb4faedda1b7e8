//! Built-in distress scorer: a small lexicon per language plus intensity
//! (capitals, exclamation, repetition) and the trend across customer turns.
//!
//! Evidence is combined as a noisy-OR (`1 - Π(1 - w)`), so each cue raises the
//! score without one cue alone reaching 1, and the order does not matter.
//!
//! The words are data (`[distress]` in `data/<tag>.toml`): [`cues`] finds
//! them, [`intensity`] reads how the text is written, [`combine`] weighs the
//! turns of a conversation.

mod cues;
mod intensity;

/// Cues found so far in one turn, combined as a noisy-OR.
#[derive(Debug)]
struct Evidence {
    /// `Π(1 - w)` over the cues added.
    keep: f32,
    /// Each cue's name once, in the order first found.
    cues: Vec<String>,
}

impl Evidence {
    fn new() -> Self {
        Self {
            keep: 1.0,
            cues: Vec::new(),
        }
    }

    /// Adds a cue of `weight`; a cue seen again raises the score again.
    fn add(&mut self, weight: f32, cue: &str) {
        self.keep *= 1.0 - weight;
        if !self.cues.iter().any(|c| c == cue) {
            self.cues.push(cue.to_owned());
        }
    }

    fn score(self) -> (f32, Vec<String>) {
        ((1.0 - self.keep).clamp(0.0, 1.0), self.cues)
    }
}

/// Score of one customer turn, 0..=1, and the cues that produced it.
#[cfg(test)]
pub(crate) fn score_text(text: &str) -> (f32, Vec<String>) {
    use crate::normalize::own_clauses;
    let clauses = own_clauses(text);
    score_turn(text, &clauses)
}

/// Score of one customer turn whose clauses are already computed, 0..=1,
/// and the cues that produced it.
pub(crate) fn score_turn(text: &str, clauses: &[Vec<String>]) -> (f32, Vec<String>) {
    let mut evidence = Evidence::new();
    cues::lexicon_cues(clauses, &mut evidence);
    cues::repeated_problem(clauses, &mut evidence);
    intensity::intensity_cues(text, clauses, &mut evidence);
    evidence.score()
}

/// Conversation score from per-turn scores (oldest first): recent turns
/// count most (each older turn decays by 0.8), and a rising trend over the
/// last turns adds to it, because frustration that keeps climbing needs a
/// human sooner than a single outburst.
pub(crate) fn combine(scores: &[f32]) -> (f32, bool) {
    let n = scores.len();
    let mut best = 0.0_f32;
    for (i, s) in scores.iter().enumerate() {
        let age = (n - 1 - i) as i32;
        best = best.max(s * 0.8_f32.powi(age));
    }
    let rising = n >= 3 && {
        let t = &scores[n - 3..];
        t[0] < t[1] && t[1] < t[2] && t[2] >= 0.3
    } || n >= 2 && {
        let t = &scores[n - 2..];
        t[0] >= 0.25 && t[1] > t[0] + 0.1
    };
    if rising {
        best = 1.0 - (1.0 - best) * 0.75;
    }
    (best.clamp(0.0, 1.0), rising)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calm_text_scores_low() {
        assert!(score_text("Hi, I'd like to check my balance please.").0 < 0.2);
        assert!(score_text("I'm not angry, just curious").0 < 0.2);
    }

    #[test]
    fn anger_profanity_capitals_and_exclamation_score_high() {
        assert!(score_text("This is RIDICULOUS, I've been waiting for HOURS!!!").0 >= 0.7);
        assert!(score_text("esto es una mierda, estoy harto").0 >= 0.7);
        assert!(score_text("C'EST INADMISSIBLE").0 >= 0.7);
        assert!(score_text("Das ist eine Frechheit! Ich bin wütend!").0 >= 0.7);
        assert!(score_text("que porra é essa, que raiva").0 >= 0.7);
    }

    #[test]
    fn italian_dutch_and_russian_cues() {
        for text in [
            "sono incazzato nero, che schifo",
            "Siete dei ladri, è una vergogna!",
            "non ne posso più, sono disperata",
            "ik ben woedend, dit is schandalig",
            "godverdomme, ik ben er klaar mee",
            "ik ben radeloos en ik ben het zat",
            "Я в бешенстве, вы издеваетесь?!",
            "Меня трясёт от злости, позор вашей компании",
            "с меня хватит, жулики",
        ] {
            assert!(score_text(text).0 >= 0.7, "{text}: {:?}", score_text(text));
        }
        for text in [
            "non sono arrabbiato, volevo solo sapere il saldo",
            "grazie mille, tutto risolto",
            "ik ben niet boos, alleen benieuwd",
            "dank je, het werkt weer",
            "Спасибо, всё заработало",
            "я не злой, просто спрашиваю",
        ] {
            assert!(score_text(text).0 < 0.3, "{text}: {:?}", score_text(text));
        }
        // "трясёт" is folded to the "трясет" of the lexicon.
        assert!(score_text("меня трясёт").1.contains(&"трясет".to_owned()));
    }

    #[test]
    fn trend_raises_the_score() {
        let (flat, rising_flat) = combine(&[0.5, 0.5, 0.5]);
        let (up, rising) = combine(&[0.2, 0.35, 0.5]);
        assert!(!rising_flat && rising);
        assert!(up > flat);
        // old outbursts decay
        assert!(combine(&[0.9, 0.0, 0.0]).0 < 0.7);
    }
}
