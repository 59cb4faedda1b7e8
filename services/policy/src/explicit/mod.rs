//! Detects a customer asking for a human, in en, es, fr, de and pt.
//!
//! A request is a *frame* (a verb of wanting or talking: "talk to", "quiero",
//! "passez-moi") joined to a *human noun* ("agent", "persona", "Mitarbeiter")
//! only by *glue* words (articles, "to", "please", "real"), or a short
//! utterance that is nothing but a noun and politeness ("AGENT!!",
//! "representante por favor"), or zeros ("0 0 0"). Requiring the frame is what
//! keeps "the agent on the phone yesterday was nice" and "are you a real
//! person?" from firing. Then the request is dropped when it is negated ("I
//! don't need a person"), reported ("my friend said talk to an agent"),
//! hypothetical or sarcastic ("as if I need a human"), in the past ("last
//! time I asked for an agent…") or the noun is another sense ("travel agent").
//! Quoted text was already removed by [`crate::normalize::own_clauses`].

/// Nouns for a human agent. `true`: may stand alone as a whole request.
const NOUNS: &[(&str, bool)] = &[
    ("agent", true),
    ("agents", true),
    ("representative", true),
    ("representatives", false),
    ("rep", true),
    ("operator", true),
    ("human", true),
    ("humans", false),
    ("person", true),
    ("supervisor", true),
    ("manager", true),
    ("agente", true),
    ("agentes", false),
    ("representante", true),
    ("operador", true),
    ("operadora", true),
    ("humano", true),
    ("persona", true),
    ("asesor", true),
    ("asesora", true),
    ("ejecutivo", false),
    ("ejecutiva", false),
    ("gerente", false),
    ("encargado", false),
    ("conseiller", true),
    ("conseillere", true),
    ("humain", true),
    ("operateur", true),
    ("operatrice", false),
    ("personne", false),
    ("responsable", false),
    ("superviseur", false),
    ("interlocuteur", false),
    ("mitarbeiter", true),
    ("mitarbeiterin", true),
    ("mensch", false),
    ("menschen", true),
    ("berater", true),
    ("beraterin", true),
    ("kundenberater", true),
    ("sachbearbeiter", false),
    ("vorgesetzten", false),
    ("agenten", false),
    ("atendente", true),
    ("atendentes", false),
    ("pessoa", true),
    ("consultor", false),
    ("kundenservice", true),
    ("kundendienst", false),
    ("advisor", false),
    ("adviser", false),
    ("specialist", false),
    ("consultant", false),
    ("vermittlung", true),
];

/// Nouns that only count after a verb of talking ("talk to someone"), because
/// "I need someone to fix my boiler" is not a handoff.
const GENERIC_NOUNS: &[&str] = &[
    "someone", "somebody", "anyone", "anybody", "alguien", "quelqu", "jemand", "jemandem",
    "jemanden", "alguem", "whoever",
];

/// Verbs (and verb-like words) of talking or connecting.
const TALK_FRAMES: &[&str] = &[
    "talk",
    "talking",
    "speak",
    "speaking",
    "chat",
    "chatting",
    "connect",
    "transfer",
    "put",
    "pass",
    "hablar",
    "comunicar",
    "comunicarme",
    "comunicame",
    "comuniqueme",
    "comunique",
    "pasar",
    "pasame",
    "paseme",
    "pasa",
    "pase",
    "ponme",
    "pongame",
    "transfiera",
    "transfiereme",
    "transfierame",
    "atienda",
    "atender",
    "conversar",
    "parler",
    "passer",
    "passez",
    "passe",
    "mettre",
    "mettez",
    "transferer",
    "transferez",
    "joindre",
    "sprechen",
    "reden",
    "verbinden",
    "verbindet",
    "durchstellen",
    "falar",
    "transferir",
    "transfere",
    "transfira",
    "passa",
    "passar",
    "coloca",
    "chama",
    "chame",
    "stellen",
    "stell",
    "verbinde",
    "transferred",
    "connected",
    "reach",
    "zuruckrufen",
    "anrufen",
    "rappeler",
    "rappelle",
    "llame",
    "llamarme",
    "ligar",
    "ligue",
    "call",
    "deal",
    "dealing",
    "pasen",
    "passem",
    "transfieran",
    "comuniquen",
    "hand",
    "callback",
    "comunica",
    "comunican",
    "rufen",
    "ruf",
];

/// Verbs of wanting, asking or getting.
const WANT_FRAMES: &[&str] = &[
    "want",
    "wanna",
    "need",
    "needs",
    "get",
    "give",
    "demand",
    "request",
    "requesting",
    "ask",
    "asking",
    "asked",
    "escalate",
    "bring",
    "said",
    "saying",
    "quiero",
    "queria",
    "quisiera",
    "necesito",
    "dame",
    "deme",
    "pido",
    "exijo",
    "solicito",
    "veux",
    "voudrais",
    "aimerais",
    "besoin",
    "exige",
    "demande",
    "faut",
    "will",
    "mochte",
    "moechte",
    "brauche",
    "verlange",
    "hatte",
    "quero",
    "preciso",
    "gostaria",
    "peco",
    "exijo",
    "dije",
    "digo",
    "geben",
    "gib",
    "holen",
    "hole",
    "prefer",
    "prefiero",
    "prefiere",
    "prefere",
    "prefiro",
    "prefererais",
    "lieber",
];

/// Words that may sit between a frame and its noun.
const GLUE: &[&str] = &[
    "to",
    "with",
    "a",
    "an",
    "the",
    "some",
    "your",
    "you",
    "me",
    "real",
    "live",
    "actual",
    "living",
    "proper",
    "genuine",
    "human",
    "please",
    "pls",
    "just",
    "now",
    "over",
    "through",
    "one",
    "of",
    "right",
    "directly",
    "immediately",
    "for",
    "can",
    "could",
    "i",
    "customer",
    "service",
    "support",
    "another",
    "u",
    "ur",
    "really",
    "actually",
    "speak",
    "talk",
    "be",
    "able",
    "d",
    "like",
    "would",
    "con",
    "un",
    "una",
    "el",
    "la",
    "al",
    "de",
    "del",
    "por",
    "favor",
    "verdadero",
    "verdadera",
    "me",
    "puede",
    "puedo",
    "podria",
    "ya",
    "ahora",
    "otra",
    "otro",
    "algun",
    "alguna",
    "su",
    "sus",
    "que",
    "se",
    "lo",
    "le",
    "au",
    "avec",
    "une",
    "l",
    "des",
    "d",
    "du",
    "moi",
    "m",
    "vrai",
    "vraie",
    "votre",
    "vos",
    "s",
    "il",
    "vous",
    "plait",
    "maintenant",
    "tout",
    "suite",
    "pouvez",
    "puis",
    "peux",
    "je",
    "j",
    "en",
    "relation",
    "mit",
    "einem",
    "einer",
    "einen",
    "ein",
    "eine",
    "dem",
    "den",
    "der",
    "die",
    "bitte",
    "echten",
    "echte",
    "echtem",
    "echter",
    "richtigen",
    "richtige",
    "richtigem",
    "sofort",
    "jetzt",
    "sie",
    "mich",
    "mir",
    "ich",
    "zu",
    "endlich",
    "ihrer",
    "ihren",
    "ihrem",
    "gern",
    "gerne",
    "com",
    "um",
    "uma",
    "o",
    "os",
    "as",
    "da",
    "do",
    "pra",
    "para",
    "real",
    "agora",
    "algum",
    "alguma",
    "seu",
    "sua",
    "eu",
    "is",
    "there",
    "hay",
    "y",
    "es",
    "gibt",
    "tem",
    "ter",
    "have",
    // "a human being", "un ser humano", "un être humain", "um ser humano"
    "ser",
    "etre",
    // Profanity as an intensifier: "get me a fucking human".
    "fucking",
    "freaking",
    "effing",
    "damn",
    "goddamn",
    "bloody",
    "puta",
    "maldita",
    "putain",
    "verdammten",
    "porra",
    "le",
    "les",
    "on",
    "am",
    "from",
    "this",
    "it",
    "call",
    "team",
    "staff",
    "department",
    "over",
];

const PHONE: &[&str] = &[
    "phone",
    "telephone",
    "telefono",
    "telefon",
    "telefone",
    "line",
    "linea",
    "ligne",
    "leitung",
];
const HAVE: &[&str] = &["have", "avoir", "tener", "haben", "ter"];

/// Words that may sit between a human noun and a later verb of talking
/// ("someone I can talk to", "alguien con quien pueda hablar", "alguém aí pra
/// eu conversar").
const RELATIVE: &[&str] = &[
    "who",
    "whom",
    "that",
    "quien",
    "pueda",
    "qui",
    "puisse",
    "dem",
    "denen",
    "kann",
    "possa",
    "posso",
    "ai",
    "aqui",
    "here",
    "available",
];

/// Politeness and urgency that may surround a bare noun ("agent please").
const FILLER: &[&str] = &[
    "please",
    "pls",
    "plz",
    "now",
    "right",
    "immediately",
    "asap",
    "a",
    "an",
    "the",
    "real",
    "live",
    "actual",
    "just",
    "hello",
    "hi",
    "hey",
    "ok",
    "okay",
    "yes",
    "yeah",
    "um",
    "uh",
    "customer",
    "service",
    "human",
    "por",
    "favor",
    "ahora",
    "ya",
    "un",
    "una",
    "hola",
    "si",
    "s",
    "il",
    "vous",
    "plait",
    "svp",
    "maintenant",
    "bonjour",
    "oui",
    "bitte",
    "jetzt",
    "sofort",
    "hallo",
    "einen",
    "einem",
    "ein",
    "ja",
    "agora",
    "oi",
    "ola",
    "um",
    "uma",
    "o",
    "sim",
    "again",
    "talk",
    "speak",
    "to",
    "with",
    "echten",
    "richtigen",
    "vite",
    "rapido",
    "schnell",
    "rapide",
    "con",
    "avec",
    "mit",
    "com",
    "vrai",
    "vraie",
    "verdadero",
    "verdadera",
    "echter",
    "echte",
];

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "without", "nor", "neither", "dont", "didnt", "doesnt", "wont", "nunca",
    "sin", "ni", "tampoco", "jamas", "ne", "n", "pas", "jamais", "sans", "nicht", "kein", "keine",
    "keinen", "keinem", "keiner", "nie", "niemals", "ohne", "nao", "nem", "sem",
];

/// Words of ability: a negation next to one is a complaint ("why can't I talk
/// to a human?"), not a refusal.
const ABILITY: &[&str] = &[
    "can", "could", "cannot", "cant", "couldnt", "why", "puedo", "puede", "podria", "hay", "peux",
    "peut", "pourrais", "pourriez", "kann", "konnen", "konnte", "posso", "pode", "poderia", "tem",
];

/// Someone else's words or a past event.
const REPORTING: &[&str] = &[
    "said",
    "says",
    "told",
    "suggested",
    "recommended",
    "dijo",
    "dice",
    "recomendo",
    "dit",
    "conseille",
    "sagte",
    "gesagt",
    "meinte",
    "sagt",
    "disse",
    "falou",
    "diz",
    "yesterday",
    "ayer",
    "hier",
    "gestern",
    "ontem",
    "last",
    "ultima",
    "derniere",
    "letztes",
    "letzte",
    "before",
    "antes",
    "avant",
    "vorher",
    "tried",
    "intente",
    "essaye",
    "versucht",
    "tentei",
    "talked",
    "spoke",
    "hable",
    "gesprochen",
    "parle",
    "falei",
];

const FIRST_PERSON: &[&str] = &["i", "yo", "je", "j", "ich", "eu"];

/// Hypothetical or sarcastic openers.
const IRREALIS: &[&[&str]] = &[
    &["as", "if"],
    &["like", "i"],
    &["like", "we"],
    &["yeah", "right"],
    &["if", "i", "wanted"],
    &["if", "i", "want"],
    &["como", "si"],
    &["comme", "si"],
    &["als", "ob"],
    &["como", "se"],
    &["si", "quisiera"],
    &["si", "je", "voulais"],
    &["wenn", "ich", "wollte"],
    &["se", "eu", "quisesse"],
];

/// "Agent" in another sense, by the word before it.
const OTHER_SENSE_BEFORE: &[&str] = &[
    "travel",
    "insurance",
    "estate",
    "secret",
    "free",
    "cleaning",
    "double",
    "fbi",
    "cia",
    "undercover",
    "booking",
    "sports",
    "talent",
    "literary",
    "shipping",
    "customs",
    "border",
    "federal",
    "special",
    "bonding",
    "chemical",
    "leasing",
    "rental",
    "ticket",
    "ticketing",
    "property",
    "letting",
    "listing",
    "ai",
    "virtual",
    "automated",
    "digital",
    "robot",
    "bot",
    "voice",
    "tour",
    "smooth",
    "network",
    "mobile",
    "machine",
    "forklift",
    "crane",
    "radio",
    "satellite",
    "telecom",
    "elected",
    "state",
    "congressional",
    "union",
    "house",
    "password",
    "project",
    "file",
    "task",
    "download",
    "package",
    "in",
    "per",
    "first",
    "third",
    "missing",
    "minha",
    "sua",
    "nossa",
    "mi",
    "tu",
    "double",
    "customs",
];

/// "Agent" in another sense, by the word after it.
const OTHER_SENSE_AFTER: &[&str] = &[
    "orange",
    "smith",
    "provocateur",
    "secreto",
    "secreta",
    "secret",
    "inmobiliario",
    "inmobiliaria",
    "imobiliario",
    "immobilier",
    "virtual",
    "virtuel",
    "artificial",
    "007",
    "double",
    "libre",
    "resources",
    "error",
    "rights",
    "trafficking",
    "nature",
    "body",
    "race",
    "turistico",
    "turistica",
    "interest",
    "bot",
    "immobiliere",
];

/// …or by `de X` after it (es/fr/pt).
const OTHER_SENSE_DE: &[&str] = &[
    "viajes",
    "viagens",
    "viagem",
    "voyage",
    "voyages",
    "seguros",
    "seguro",
    "assurance",
    "assurances",
    "transito",
    "policia",
    "police",
    "aduanas",
    "aduana",
    "bolsa",
    "ley",
    "change",
    "ia",
    "bienes",
    "telefonia",
    "celular",
    "cartao",
    "credito",
    "turismo",
    "immobilier",
];

const ZERO_WORDS: &[&str] = &["zero", "zeros", "cero", "ceros", "null", "nul"];
const PRESS: &[&str] = &[
    "press", "pressing", "pressed", "dial", "dialing", "dialed", "hit", "hitting", "marco",
    "marque", "marcar", "presiono", "pulso", "oprimo", "appuie", "appuyer", "tape", "taper",
    "drucke", "druecke", "wahle", "aperto", "apertei", "digito", "disco",
];

const REFUSALS: &[&[&str]] = &[
    &["no", "thanks"],
    &["no", "thank"],
    &["not", "needed"],
    &["not", "necessary"],
    &["no", "gracias"],
    &["no", "hace", "falta"],
    &["non", "merci"],
    &["pas", "necessaire"],
    &["nein", "danke"],
    &["nicht", "notig"],
    &["nao", "obrigado"],
    &["nao", "obrigada"],
    &["nao", "precisa"],
];

/// The word lists above as hash sets, built once: the lists stay readable
/// as code and every lookup on the hot path is O(1).
mod sets {
    use std::collections::{HashMap, HashSet};
    use std::sync::LazyLock;

    macro_rules! sets {
        ($($name:ident),* $(,)?) => {
            $(pub(super) static $name: LazyLock<HashSet<&'static str>> =
                LazyLock::new(|| super::$name.iter().copied().collect());)*
        };
    }
    sets!(
        GENERIC_NOUNS,
        TALK_FRAMES,
        WANT_FRAMES,
        GLUE,
        RELATIVE,
        FILLER,
        NEGATIONS,
        ABILITY,
        REPORTING,
        FIRST_PERSON,
        OTHER_SENSE_BEFORE,
        OTHER_SENSE_AFTER,
        OTHER_SENSE_DE,
        ZERO_WORDS,
        PRESS,
        PHONE,
        HAVE,
    );
    pub(super) static NOUNS: LazyLock<HashMap<&'static str, bool>> =
        LazyLock::new(|| super::NOUNS.iter().copied().collect());
}

fn has(set: &std::collections::HashSet<&'static str>, w: &str) -> bool {
    set.contains(w)
}

fn noun_at(tokens: &[String], k: usize) -> Option<(bool, bool)> {
    let w = tokens[k].as_str();
    let before = k.checked_sub(1).map(|p| tokens[p].as_str());
    let after = tokens.get(k + 1).map(String::as_str);
    // The team of humans by its name: "customer service", "service client",
    // "atención al cliente".
    let team = match w {
        "service" | "care" | "support" => {
            before == Some("customer") || matches!(after, Some("client" | "clients" | "clientele"))
        }
        "atencion" => after == Some("al") && tokens.get(k + 2).is_some_and(|t| t == "cliente"),
        "atendimento" => true,
        _ => false,
    };
    if team {
        return Some((true, false));
    }
    if let Some(&alone) = sets::NOUNS.get(w) {
        return Some((alone, false));
    }
    if has(&sets::GENERIC_NOUNS, w) {
        return Some((false, true));
    }
    None
}

fn other_sense(tokens: &[String], k: usize) -> bool {
    let before = k.checked_sub(1).map(|p| tokens[p].as_str());
    let after = tokens.get(k + 1).map(String::as_str);
    let after2 = tokens.get(k + 2).map(String::as_str);
    before.is_some_and(|b| has(&sets::OTHER_SENSE_BEFORE, b))
        || after.is_some_and(|a| has(&sets::OTHER_SENSE_AFTER, a))
        || (after.is_some_and(|a| matches!(a, "de" | "du" | "d" | "da" | "do" | "des"))
            && after2.is_some_and(|a| has(&sets::OTHER_SENSE_DE, a)))
}

fn is_frame(tokens: &[String], i: usize, talk_only: bool) -> bool {
    let w = tokens[i].as_str();
    if w == "call" {
        // "someone call me back", not "my call with the operator".
        return tokens
            .get(i + 1)
            .is_some_and(|t| matches!(t.as_str(), "me" | "back" | "us"));
    }
    if has(&sets::TALK_FRAMES, w) {
        return true;
    }
    // "ser atendido por una persona": being served by a person.
    if matches!(w, "atendido" | "atendida" | "atendidos") && i > 0 && tokens[i - 1] == "ser" {
        return true;
    }
    // "get me someone", "find me somebody": wanting a person for oneself.
    if matches!(w, "get" | "give" | "find" | "bring")
        && tokens.get(i + 1).is_some_and(|t| t == "me")
    {
        return true;
    }
    if w == "there" {
        // "is there a human", "there's someone"
        return i > 0 && matches!(tokens[i - 1].as_str(), "is" | "s" | "any");
    }
    if talk_only {
        return false;
    }
    if matches!(w, "said" | "saying" | "dije" | "digo") {
        // Only the customer's own saying is a request ("I said agent").
        return tokens[i.saturating_sub(3)..i]
            .iter()
            .any(|t| has(&sets::FIRST_PERSON, t))
            || w != "said";
    }
    if w == "like" {
        return i > 0 && matches!(tokens[i - 1].as_str(), "d" | "would");
    }
    if w == "have" {
        return i > 1 && matches!(tokens[i - 2].as_str(), "can" | "could" | "may");
    }
    has(&sets::WANT_FRAMES, w)
}

fn negated_at(tokens: &[String], i: usize) -> bool {
    let w = tokens[i].as_str();
    if !has(&sets::NEGATIONS, w) {
        return false;
    }
    let lo = i.saturating_sub(2);
    let hi = (i + 3).min(tokens.len());
    !tokens[lo..hi].iter().any(|t| has(&sets::ABILITY, t))
}

fn starts_with_seq(tokens: &[String], at: usize, seq: &[&str]) -> bool {
    seq.iter()
        .enumerate()
        .all(|(j, s)| tokens.get(at + j).is_some_and(|t| t == s))
}

/// Is the request at `start..=end` of `clause` cancelled by context?
fn cancelled(
    clause: &[String],
    start: usize,
    end: usize,
    next_clause: Option<&Vec<String>>,
) -> bool {
    // Negation just before the request, or inside it.
    let lo = start.saturating_sub(3);
    if (lo..=end).any(|i| negated_at(clause, i)) {
        return true;
    }
    // Negation just after the noun, unless it is a contrast ("an agent, not a bot").
    for i in end + 1..(end + 4).min(clause.len()) {
        if negated_at(clause, i) {
            let contrast = clause.get(i + 1).is_some_and(|t| {
                matches!(
                    t.as_str(),
                    "a" | "an"
                        | "the"
                        | "un"
                        | "una"
                        | "um"
                        | "uma"
                        | "ein"
                        | "eine"
                        | "einen"
                        | "el"
                        | "le"
                        | "o"
                        | "bot"
                        | "robot"
                        | "machine"
                        | "maquina"
                        | "roboter"
                        | "robo"
                )
            });
            if !contrast {
                return true;
            }
        }
    }
    // Reported speech or a past event before the request, unless the customer
    // is reporting themselves ("I said…", "I already asked for…").
    for i in 0..start {
        if has(&sets::REPORTING, &clause[i]) {
            let own = clause[i.saturating_sub(2)..i]
                .iter()
                .any(|t| has(&sets::FIRST_PERSON, t))
                && !matches!(
                    clause[i].as_str(),
                    "yesterday" | "last" | "before" | "tried" | "talked" | "spoke"
                );
            if !own {
                return true;
            }
        }
    }
    // Describing the conversation, not asking for a change: "am I talking to
    // a human?", "¿estoy hablando con una persona?".
    if matches!(
        clause[start].as_str(),
        "talking" | "speaking" | "chatting" | "hablando" | "falando" | "conversando"
    ) && start > 0
        && clause[start.saturating_sub(2)..start].iter().any(|t| {
            matches!(
                t.as_str(),
                "am" | "m" | "are" | "is" | "estoy" | "estou" | "esta" | "estamos"
            )
        })
    {
        return true;
    }
    // Hypothetical or sarcastic.
    for i in 0..start {
        if IRREALIS.iter().any(|seq| starts_with_seq(clause, i, seq)) {
            return true;
        }
    }
    // Not now: "I'd love to talk to a human someday".
    if clause[end + 1..].iter().take(4).any(|t| {
        matches!(
            t.as_str(),
            "someday"
                | "eventually"
                | "later"
                | "luego"
                | "despues"
                | "jour"
                | "irgendwann"
                | "spater"
                | "depois"
        )
    }) {
        return true;
    }
    // "An agent? No thanks."
    if let Some(next) = next_clause
        && REFUSALS.iter().any(|seq| starts_with_seq(next, 0, seq))
    {
        return true;
    }
    false
}

fn evidence(clause: &[String], start: usize, end: usize) -> String {
    crate::normalize::mask_digits(&clause[start..=end].join(" "))
}

/// Zeros as the whole clause ("0 0 0", "000", "cero cero") or after a press
/// verb ("I pressed 0").
fn zeros(clause: &[String]) -> Option<String> {
    let zero_count = |t: &str| -> usize {
        if has(&sets::ZERO_WORDS, t) {
            1
        } else if !t.is_empty() && t.bytes().all(|b| b == b'0') {
            t.len()
        } else {
            0
        }
    };
    let mut count = 0;
    let mut all = true;
    for t in clause {
        let z = zero_count(t);
        count += z;
        if z == 0 && !has(&sets::FILLER, t) && !has(&sets::PRESS, t) {
            all = false;
        }
    }
    if all && count >= 2 {
        return Some(clause.join(" "));
    }
    for (i, t) in clause.iter().enumerate() {
        if has(&sets::PRESS, t) && clause.get(i + 1).is_some_and(|n| zero_count(n) > 0) {
            return Some(format!("{t} {}", clause[i + 1]));
        }
    }
    None
}

/// Where a request for a human is in a turn's clauses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// Words `start..=end` of clause `clause`: the evidence is that part of
    /// what the customer wrote.
    Words {
        clause: usize,
        start: usize,
        end: usize,
    },
    /// Zeros ("0 0 0", "press 0"), quoted as tokens: their digits are the
    /// evidence, and they may span clauses.
    Zeros(String),
}

/// Finds a request for a human in one customer turn's clauses. Returns the
/// evidence phrase, made of the tokens.
pub(crate) fn detect(clauses: &[Vec<String>], extra_phrases: &[Vec<String>]) -> Option<String> {
    Some(match locate(clauses, extra_phrases)? {
        Hit::Words { clause, start, end } => evidence(&clauses[clause], start, end),
        Hit::Zeros(zeros) => zeros,
    })
}

/// Finds a request for a human in one customer turn's clauses.
pub(crate) fn locate(clauses: &[Vec<String>], extra_phrases: &[Vec<String>]) -> Option<Hit> {
    // "zero, zero, zero": zeros split by punctuation are still one request.
    if clauses.len() > 1
        && let Some(z) = zeros(&clauses.concat())
    {
        return Some(Hit::Zeros(z));
    }
    for (ci, clause) in clauses.iter().enumerate() {
        let next = clauses.get(ci + 1);
        if let Some(z) = zeros(clause) {
            return Some(Hit::Zeros(z));
        }
        for phrase in extra_phrases {
            if phrase.is_empty() || phrase.len() > clause.len() {
                continue;
            }
            for s in 0..=clause.len() - phrase.len() {
                let end = s + phrase.len() - 1;
                if clause[s..=end] == phrase[..] && !cancelled(clause, s, end, next) {
                    return Some(Hit::Words {
                        clause: ci,
                        start: s,
                        end,
                    });
                }
            }
        }
        for k in 0..clause.len() {
            let Some((alone, generic)) = noun_at(clause, k) else {
                continue;
            };
            if other_sense(clause, k) {
                continue;
            }
            // A bare noun with only politeness around it.
            if alone
                && clause
                    .iter()
                    .enumerate()
                    .all(|(i, t)| i == k || has(&sets::FILLER, t) || noun_at(clause, i).is_some())
            {
                if !cancelled(clause, k, k, next) {
                    return Some(Hit::Words {
                        clause: ci,
                        start: 0,
                        end: clause.len() - 1,
                    });
                }
                continue;
            }
            // Frame … glue … noun.
            let mut start = None;
            let mut i = k;
            while i > 0 && k - i < 8 {
                i -= 1;
                if is_frame(clause, i, generic) {
                    start = Some(i);
                } else if !has(&sets::GLUE, &clause[i]) {
                    break;
                }
            }
            // Noun … glue … frame ("mit einem Menschen sprechen", "a human I can talk to").
            let mut end = k;
            if start.is_none() {
                let mut j = k + 1;
                while j < clause.len() && j - k <= 5 {
                    // "someone on the phone" is a request only when wanted:
                    // "can I have someone on the phone?", not "the agent on
                    // the phone yesterday".
                    let phone = has(&sets::PHONE, &clause[j])
                        && clause[..k].iter().any(|t| {
                            has(&sets::WANT_FRAMES, t)
                                || has(&sets::ABILITY, t)
                                || has(&sets::HAVE, t)
                        });
                    if phone || is_frame(clause, j, true) {
                        end = j;
                        start = Some(k);
                        break;
                    } else if !has(&sets::GLUE, &clause[j]) && !has(&sets::RELATIVE, &clause[j]) {
                        break;
                    }
                    j += 1;
                }
            }
            if let Some(s) = start
                && !cancelled(clause, s, end.max(k), next)
            {
                return Some(Hit::Words {
                    clause: ci,
                    start: s,
                    end: end.max(k),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::own_clauses;

    fn fires(text: &str) -> bool {
        detect(&own_clauses(text), &[]).is_some()
    }

    #[test]
    fn requests_in_five_languages() {
        for t in [
            "I want to talk to a real person",
            "AGENT!!!",
            "representative please",
            "human please",
            "operator",
            "Can I speak with someone?",
            "0 0 0",
            "000",
            "Quiero hablar con un agente",
            "pásame con una persona, por favor",
            "Je voudrais parler à un conseiller",
            "Passez-moi quelqu'un s'il vous plaît",
            "Ich möchte mit einem Mitarbeiter sprechen",
            "Verbinden Sie mich bitte mit einem Menschen",
            "Quero falar com um atendente",
            "me passa pra uma pessoa de verdade",
            "Why can't I talk to a human?",
            "I said 'agent'!",
        ] {
            assert!(fires(t), "{t}");
        }
    }

    #[test]
    fn negation_quotes_and_other_senses() {
        for t in [
            "I don't need a person, you're doing fine",
            "no quiero un agente",
            "je n'ai pas besoin d'un conseiller",
            "Ich brauche keinen Mitarbeiter",
            "não preciso de um atendente",
            "my friend said 'talk to an agent'",
            "my friend said talk to an agent",
            "my travel agent booked this flight",
            "I need my insurance agent's number",
            "the agent on the phone yesterday was nice",
            "was my dad exposed to agent orange",
            "are you a real person?",
            "the total was $0.00",
            "my account number ends in 000",
            "as if I need a human to reset a password",
            "Quero falar com meu agente de viagens",
        ] {
            assert!(!fires(t), "{t}");
        }
    }

    #[test]
    fn evidence_masks_digits() {
        let e = detect(&own_clauses("press 0"), &[]);
        assert_eq!(e.as_deref(), Some("press 0"));
        let e = detect(&own_clauses("I want to talk to a person"), &[]);
        assert_eq!(e.as_deref(), Some("want to talk to a person"));
    }
}
