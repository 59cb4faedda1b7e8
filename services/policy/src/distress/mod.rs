//! Built-in distress scorer: a small lexicon per language plus intensity
//! (capitals, exclamation, repetition) and the trend across customer turns.
//!
//! Evidence is combined as a noisy-OR (`1 - Π(1 - w)`), so each cue raises the
//! score without one cue alone reaching 1, and the order does not matter.

/// Single-word cues, folded. Weights: mild ≈ 0.3, strong ≈ 0.5, profanity,
/// threats and panic ≈ 0.6.
const WORDS: &[(&str, f32)] = &[
    // en
    ("angry", 0.65),
    ("furious", 0.65),
    ("livid", 0.65),
    ("pissed", 0.6),
    ("mad", 0.35),
    ("upset", 0.5),
    ("frustrated", 0.6),
    ("frustrating", 0.45),
    ("annoyed", 0.3),
    ("annoying", 0.3),
    ("ridiculous", 0.65),
    ("unacceptable", 0.65),
    ("outrageous", 0.65),
    ("absurd", 0.55),
    ("terrible", 0.35),
    ("horrible", 0.4),
    ("awful", 0.35),
    ("worst", 0.45),
    ("useless", 0.6),
    ("pathetic", 0.6),
    ("incompetent", 0.6),
    ("scam", 0.6),
    ("scammed", 0.55),
    ("stupid", 0.5),
    ("idiot", 0.55),
    ("idiots", 0.55),
    ("hate", 0.45),
    ("unbelievable", 0.45),
    ("disgusting", 0.65),
    ("disgrace", 0.55),
    ("shameful", 0.5),
    ("nightmare", 0.45),
    ("lawyer", 0.55),
    ("sue", 0.5),
    ("scared", 0.65),
    ("afraid", 0.4),
    ("terrified", 0.75),
    ("panic", 0.7),
    ("panicking", 0.75),
    ("desperate", 0.7),
    ("anxious", 0.45),
    ("worried", 0.3),
    ("stressed", 0.5),
    ("crying", 0.55),
    ("emergency", 0.45),
    ("urgent", 0.3),
    ("hours", 0.3),
    ("joke", 0.3),
    ("seriously", 0.35),
    ("insane", 0.45),
    ("robbery", 0.5),
    ("thieves", 0.55),
    ("fuck", 0.75),
    ("fucking", 0.75),
    ("fucked", 0.75),
    ("shit", 0.7),
    ("shitty", 0.6),
    ("bullshit", 0.75),
    ("wtf", 0.7),
    ("damn", 0.35),
    ("damned", 0.35),
    ("crap", 0.4),
    ("asshole", 0.65),
    ("bloody", 0.3),
    ("hell", 0.3),
    // es
    ("enojado", 0.65),
    ("enojada", 0.65),
    ("enfadado", 0.55),
    ("enfadada", 0.55),
    ("furioso", 0.65),
    ("furiosa", 0.65),
    ("harto", 0.65),
    ("harta", 0.65),
    ("molesto", 0.4),
    ("molesta", 0.4),
    ("frustrado", 0.5),
    ("frustrada", 0.5),
    ("ridiculo", 0.65),
    ("inaceptable", 0.65),
    ("absurdo", 0.55),
    ("pesimo", 0.55),
    ("inutil", 0.5),
    ("inutiles", 0.5),
    ("estafa", 0.5),
    ("estafado", 0.55),
    ("ladrones", 0.65),
    ("verguenza", 0.6),
    ("abogado", 0.5),
    ("denunciar", 0.5),
    ("desesperado", 0.7),
    ("desesperada", 0.7),
    ("asustado", 0.65),
    ("asustada", 0.65),
    ("preocupado", 0.3),
    ("preocupada", 0.3),
    ("urgente", 0.3),
    ("horas", 0.3),
    ("mierda", 0.75),
    ("joder", 0.75),
    ("carajo", 0.65),
    ("puta", 0.65),
    ("puto", 0.65),
    ("cabron", 0.65),
    ("pinche", 0.55),
    ("chingada", 0.65),
    ("maldita", 0.4),
    ("maldito", 0.4),
    ("cono", 0.6),
    ("increible", 0.3),
    ("panico", 0.6),
    ("miedo", 0.45),
    // fr
    ("enerve", 0.5),
    ("enervee", 0.5),
    ("furieux", 0.7),
    ("furieuse", 0.65),
    ("fache", 0.45),
    ("colere", 0.65),
    ("frustre", 0.5),
    ("frustree", 0.5),
    ("ridicule", 0.65),
    ("inacceptable", 0.65),
    ("absurde", 0.55),
    ("nul", 0.35),
    ("nulle", 0.35),
    ("inutile", 0.45),
    ("arnaque", 0.55),
    ("honteux", 0.65),
    ("honte", 0.45),
    ("scandaleux", 0.65),
    ("inadmissible", 0.65),
    ("avocat", 0.5),
    ("marre", 0.65),
    ("desespere", 0.7),
    ("desesperee", 0.7),
    ("inquiet", 0.3),
    ("inquiete", 0.3),
    ("peur", 0.6),
    ("panique", 0.6),
    ("merde", 0.75),
    ("putain", 0.75),
    ("bordel", 0.55),
    ("connard", 0.65),
    ("chier", 0.55),
    ("foutre", 0.55),
    ("heures", 0.3),
    ("voleurs", 0.55),
    ("catastrophe", 0.45),
    // de
    ("wutend", 0.7),
    ("sauer", 0.45),
    ("verargert", 0.45),
    ("frustriert", 0.5),
    ("lacherlich", 0.65),
    ("inakzeptabel", 0.65),
    ("unverschamt", 0.55),
    ("unmoglich", 0.4),
    ("schrecklich", 0.4),
    ("furchtbar", 0.4),
    ("katastrophe", 0.45),
    ("schlimmste", 0.45),
    ("nutzlos", 0.5),
    ("betrug", 0.55),
    ("betruger", 0.55),
    ("abzocke", 0.55),
    ("frechheit", 0.65),
    ("anwalt", 0.5),
    ("verzweifelt", 0.7),
    ("angst", 0.6),
    ("panik", 0.6),
    ("dringend", 0.3),
    ("scheisse", 0.75),
    ("scheiss", 0.75),
    ("verdammt", 0.5),
    ("verdammte", 0.5),
    ("mist", 0.35),
    ("kacke", 0.5),
    ("arschloch", 0.65),
    ("idioten", 0.55),
    ("stunden", 0.3),
    ("zumutung", 0.55),
    ("sauerei", 0.55),
    // pt
    ("irritado", 0.45),
    ("irritada", 0.45),
    ("chateado", 0.45),
    ("chateada", 0.45),
    ("ridiculo", 0.65),
    ("inaceitavel", 0.65),
    ("pessimo", 0.55),
    ("pessima", 0.55),
    ("horrivel", 0.4),
    ("golpe", 0.45),
    ("ladroes", 0.65),
    ("vergonha", 0.6),
    ("advogado", 0.5),
    ("processar", 0.5),
    ("procon", 0.5),
    ("medo", 0.6),
    ("socorro", 0.55),
    ("porra", 0.75),
    ("merda", 0.75),
    ("caralho", 0.75),
    ("droga", 0.35),
    ("raiva", 0.65),
    ("furiosa", 0.65),
    ("desesperado", 0.7),
    ("absurdo", 0.55),
    ("descaso", 0.5),
    ("horas", 0.3),
    // Something taken or broken into: anxiety.
    ("stolen", 0.3),
    ("hacked", 0.3),
    ("robado", 0.3),
    ("robada", 0.3),
    ("hackeado", 0.3),
    ("vole", 0.3),
    ("volee", 0.3),
    ("pirate", 0.3),
    ("gestohlen", 0.3),
    ("gehackt", 0.3),
    ("roubado", 0.3),
    ("roubada", 0.3),
    ("roubaram", 0.3),
    ("hackearam", 0.3),
    ("lose", 0.2),
    ("perder", 0.2),
    ("perdre", 0.2),
    ("verlieren", 0.2),
    // The same problem again.
    ("again", 0.2),
    ("wieder", 0.2),
    ("kidding", 0.45),
    ("nobody", 0.2),
    ("nadie", 0.2),
    ("niemand", 0.2),
    ("ninguem", 0.2),
    ("waiting", 0.15),
    ("esperando", 0.15),
    ("warte", 0.15),
    ("attends", 0.15),
    ("frozen", 0.3),
    ("blocked", 0.25),
    ("bloqueada", 0.25),
    ("bloqueado", 0.25),
    ("bloque", 0.25),
    ("bloquee", 0.25),
    ("gesperrt", 0.25),
    ("week", 0.2),
    ("weeks", 0.2),
    ("semana", 0.2),
    ("semanas", 0.2),
    ("semaine", 0.2),
    ("semaines", 0.2),
    ("woche", 0.2),
    ("wochen", 0.2),
    ("cloned", 0.3),
    ("clonada", 0.3),
    ("clonado", 0.3),
    ("desastre", 0.45),
    ("sinverguenzas", 0.6),
    ("sinverguenza", 0.6),
    ("stinksauer", 0.7),
    ("palhacada", 0.55),
    ("desastre", 0.45),
    ("twice", 0.25),
    ("zweimal", 0.25),
];

/// [`WORDS`] as a map, built once; the first entry of a word wins.
static WORD_INDEX: std::sync::LazyLock<std::collections::HashMap<&'static str, f32>> =
    std::sync::LazyLock::new(|| {
        let mut index = std::collections::HashMap::new();
        for &(word, weight) in WORDS {
            index.entry(word).or_insert(weight);
        }
        index
    });

/// Word starts, for cues with many inflected or pronoun-attached forms.
const STEMS: &[(&str, f32)] = &[
    ("denunci", 0.5),
    ("demandar", 0.5),
    ("processar", 0.5),
    ("verklag", 0.5),
    ("poursuivre", 0.4),
    ("fuck", 0.75),
    ("scheiss", 0.75),
    ("idiot", 0.55),
    ("unverschamt", 0.65),
];

/// Words that strengthen the cue after them ("so angry", "completely useless").
const INTENSIFIERS: &[&str] = &[
    "so",
    "very",
    "really",
    "completely",
    "totally",
    "absolutely",
    "extremely",
    "muy",
    "tan",
    "totalmente",
    "completamente",
    "tres",
    "vraiment",
    "completement",
    "totalement",
    "sehr",
    "total",
    "echt",
    "voll",
    "muito",
    "tao",
    "super",
    "absolute",
    "absoluta",
    "absoluto",
    "absolue",
    "absolut",
    "absoluten",
    "totale",
    "reine",
    "utter",
    "complete",
    "wirklich",
    "bodenlose",
    "bodenlos",
];

/// Multi-word cues, folded.
const PHRASES: &[(&[&str], f32)] = &[
    (&["fed", "up"], 0.65),
    (&["sick", "of"], 0.5),
    (&["had", "enough"], 0.65),
    (&["waste", "of", "time"], 0.45),
    (&["wasting", "my", "time"], 0.45),
    (&["please", "help"], 0.3),
    (&["help", "me"], 0.2),
    (&["going", "in", "circles"], 0.45),
    (&["never", "again"], 0.4),
    (&["otra", "vez"], 0.2),
    (&["de", "novo"], 0.2),
    (&["waiting", "for", "hours"], 0.2),
    (&["es", "reicht"], 0.65),
    (&["die", "nase", "voll"], 0.6),
    (&["to", "cansado"], 0.5),
    (&["estou", "cansado"], 0.5),
    (&["estou", "cansada"], 0.5),
    (&["que", "saco"], 0.5),
    (&["ayuda", "por", "favor"], 0.3),
    (&["aidez", "moi"], 0.3),
    (&["helfen", "sie", "mir"], 0.25),
    (&["me", "ajuda"], 0.25),
    (&["me", "ajudem"], 0.3),
    (&["otra", "vez"], 0.2),
    (&["de", "novo"], 0.2),
    (&["waiting", "for", "hours"], 0.2),
    (&["hasta", "las", "narices"], 0.7),
    (&["hasta", "la", "madre"], 0.7),
    (&["hasta", "el", "gorro"], 0.7),
    (&["suis", "a", "bout"], 0.7),
    (&["en", "peux", "plus"], 0.6),
    (&["nao", "aguento"], 0.6),
    (&["no", "aguanto"], 0.6),
    (&["not", "take", "it", "anymore"], 0.6),
    (&["halte", "das", "nicht", "mehr"], 0.6),
    (&["ras", "le", "bol"], 0.7),
    (&["wits", "end"], 0.7),
    (&["bout", "de", "nerfs"], 0.7),
    (&["nerven", "am", "ende"], 0.7),
    (&["hasta", "el", "mono"], 0.7),
    (&["meu", "limite"], 0.6),
    (&["still", "no"], 0.3),
    (&["still", "not"], 0.3),
    (&["toujours", "pas"], 0.3),
    (&["todavia", "no"], 0.3),
    (&["ainda", "nao"], 0.3),
    (&["immer", "noch", "nicht"], 0.3),
    (&["es", "un", "robo"], 0.6),
    (&["du", "vol"], 0.6),
    (&["um", "roubo"], 0.6),
];

const NEGATORS: &[&str] = &[
    "not", "no", "never", "nao", "pas", "nicht", "kein", "ne", "n", "nunca", "sem", "sin",
];

/// Score of one customer turn, 0..=1, and the cues that produced it.
#[cfg(test)]
pub(crate) fn score_text(text: &str) -> (f32, Vec<String>) {
    use crate::normalize::own_clauses;
    let clauses = own_clauses(text);
    score_turn(text, &clauses)
}

/// Like [`score_text`] with the clauses already computed.
pub(crate) fn score_turn(text: &str, clauses: &[Vec<String>]) -> (f32, Vec<String>) {
    let mut keep = 1.0_f32;
    let mut cues: Vec<String> = Vec::new();
    let mut add = |w: f32, cue: &str, cues: &mut Vec<String>| {
        keep *= 1.0 - w;
        if !cues.iter().any(|c| c == cue) {
            cues.push(cue.to_owned());
        }
    };
    // "not angry", "no estoy enojado", "pas de panique"; but not the
    // Portuguese "no" (in the) of "reclamar no Procon".
    let negated = |clause: &[String], i: usize| {
        let before = |n: usize| i.checked_sub(n).map(|j| clause[j].as_str());
        before(1).is_some_and(|t| t != "no" && NEGATORS.contains(&t))
            || (before(2).is_some_and(|t| NEGATORS.contains(&t))
                && before(1).is_some_and(|t| {
                    matches!(
                        t,
                        "am" | "m"
                            | "is"
                            | "re"
                            | "estoy"
                            | "estou"
                            | "soy"
                            | "sou"
                            | "bin"
                            | "suis"
                            | "de"
                            | "so"
                            | "really"
                            | "that"
                    )
                }))
    };
    let mut words = 0usize;
    let mut repeated = false;
    for clause in clauses {
        words += clause.len();
        for (i, w) in clause.iter().enumerate() {
            let hit = WORD_INDEX
                .get_key_value(w.as_str())
                .map(|(c, w)| (*c, *w))
                .or_else(|| {
                    // Stems cover inflections and attached pronouns ("denunciarlos").
                    STEMS.iter().find(|(c, _)| w.starts_with(c)).copied()
                });
            if let Some((cue, weight)) = hit
                && !negated(clause, i)
            {
                let boost = if i > 0 && INTENSIFIERS.contains(&clause[i - 1].as_str()) {
                    0.15
                } else {
                    0.0
                };
                add((weight + boost).min(0.9), cue, &mut cues);
            }
            if i > 0
                && clause[i - 1] == *w
                && w.chars().count() >= 2
                && w.chars().all(char::is_alphabetic)
            {
                repeated = true;
            }
        }
        for (seq, weight) in PHRASES {
            if clause.windows(seq.len()).enumerate().any(|(i, win)| {
                win.iter().zip(seq.iter()).all(|(a, b)| a == b) && !negated(clause, i)
            }) {
                let boost = clause
                    .windows(seq.len())
                    .position(|win| win.iter().zip(seq.iter()).all(|(a, b)| a == b))
                    .and_then(|i| i.checked_sub(1))
                    .is_some_and(|j| INTENSIFIERS.contains(&clause[j].as_str()));
                add(
                    if boost {
                        (*weight + 0.15).min(0.9)
                    } else {
                        *weight
                    },
                    &seq.join(" "),
                    &mut cues,
                );
            }
        }
    }
    // The same problem over and over: "the fourth time", "cinco vezes".
    let repeats = clauses.iter().any(|c| {
        c.windows(2).any(|w| {
            let count = matches!(
                w[0].as_str(),
                "two"
                    | "dos"
                    | "deux"
                    | "zwei"
                    | "duas"
                    | "third"
                    | "fourth"
                    | "fifth"
                    | "tercera"
                    | "cuarta"
                    | "quinta"
                    | "troisieme"
                    | "quatrieme"
                    | "dritte"
                    | "vierte"
                    | "funfte"
                    | "terceira"
                    | "quarta"
                    | "three"
                    | "four"
                    | "five"
                    | "tres"
                    | "cuatro"
                    | "cinco"
                    | "trois"
                    | "quatre"
                    | "cinq"
                    | "drei"
                    | "vier"
                    | "funf"
                    | "quatro"
            ) || w[0].chars().all(|c| c.is_ascii_digit());
            count
                && matches!(
                    w[1].as_str(),
                    "time" | "times" | "vez" | "veces" | "fois" | "mal" | "vezes"
                )
        })
    });
    if repeats {
        add(0.3, "repeated problem", &mut cues);
    }
    // Intensity from the raw text.
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let upper = text.chars().filter(|c| c.is_uppercase()).count();
    if letters >= 8 && upper * 10 >= letters * 7 {
        add(0.4, "capitals", &mut cues);
    } else if words >= 3 {
        let shouted = text
            .split_whitespace()
            .filter(|w| {
                let l: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
                l.len() >= 3 && l.iter().all(|c| c.is_uppercase())
            })
            .count();
        if shouted >= 2 {
            add(0.25, "capitals", &mut cues);
        } else if shouted == 1 {
            add(0.15, "capitals", &mut cues);
        }
    }
    let bangs = text.matches('!').count();
    if bangs > 0 {
        add(
            match bangs {
                1 => 0.1,
                2 => 0.2,
                _ => 0.3,
            },
            "exclamation",
            &mut cues,
        );
    }
    if text.contains("?!") || text.contains("!?") {
        add(0.15, "exclamation", &mut cues);
    }
    if repeated {
        add(0.15, "repetition", &mut cues);
    }
    // "sooooo", "pleeease": the same letter four times in a row.
    let mut elongated = false;
    let mut run = (' ', 0u32);
    for c in text.chars() {
        let c = if c.is_ascii() {
            c.to_ascii_lowercase()
        } else {
            c
        };
        run = if c == run.0 { (c, run.1 + 1) } else { (c, 1) };
        if run.1 >= 4 && c.is_alphabetic() {
            elongated = true;
            break;
        }
    }
    if elongated {
        add(0.1, "elongation", &mut cues);
    }
    ((1.0 - keep).clamp(0.0, 1.0), cues)
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
    fn trend_raises_the_score() {
        let (flat, rising_flat) = combine(&[0.5, 0.5, 0.5]);
        let (up, rising) = combine(&[0.2, 0.35, 0.5]);
        assert!(!rising_flat && rising);
        assert!(up > flat);
        // old outbursts decay
        assert!(combine(&[0.9, 0.0, 0.0]).0 < 0.7);
    }
}
