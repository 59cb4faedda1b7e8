//! Evaluations per second on one core for a typical 10-turn conversation,
//! next to two baselines measured in the same run on the same text: folding
//! it to lower case (the least any text policy must do) and a naive
//! `contains("agent")` scan. Then customer turns per second, one turn per
//! evaluation (as runtimes send them), over the corpus's evaluation split
//! in nine languages: rules alone, model alone, both. Run with
//! `cargo bench -p baton-policy`.

use baton_policy::{
    AiOutcome, Conversation, Intent, Layers, PolicyConfig, Turn, evaluate, evaluate_with,
    evaluation,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn conversation() -> Conversation {
    let turns = vec![
        Turn::customer("Hi, I was charged twice for my internet bill this month."),
        Turn::ai(
            "I'm sorry to hear that. Can you confirm the last four digits of the card?",
            AiOutcome::Resolved,
        ),
        Turn::customer("It ends in 4821. The second charge was on the 14th."),
        Turn::ai(
            "I can see two charges. One of them is a pre-authorisation.",
            AiOutcome::Resolved,
        ),
        Turn::customer("No, both of them went through, my bank shows both as completed!"),
        Turn::ai(
            "Sorry, I didn't understand. Could you rephrase?",
            AiOutcome::NotUnderstood,
        ),
        Turn::customer(
            "BOTH charges are final. This is really frustrating, I need that money back.",
        ),
        Turn::ai(
            "I can open a refund request for the duplicate charge.",
            AiOutcome::Resolved,
        ),
        Turn::customer(
            "Fine, but I don't want to wait weeks. Can I speak to a real person about it?",
        ),
        Turn::ai("Of course, let me connect you.", AiOutcome::Resolved),
    ];
    Conversation {
        language: "en".into(),
        intent: Some(Intent {
            name: "billing.duplicate_charge".into(),
            confidence: 0.82,
        }),
        turns,
        entity_types: vec!["card_last4".into()],
        flags: Default::default(),
    }
}

/// Runs `f` repeatedly for about `budget`, returns calls per second.
fn rate(budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let mut sink = 0usize;
    for _ in 0..100 {
        sink = sink.wrapping_add(f());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            sink = sink.wrapping_add(f());
        }
        n += 100;
    }
    black_box(sink);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo test --benches` passes --bench too; keep that run short.
    let budget = if std::env::args().any(|a| a == "--bench") {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(200)
    };
    let config = PolicyConfig::from_json(
        r#"{"complexity": {"capabilities": ["billing.*", "orders.*"]},
            "compliance": {"rules": [{"name": "poa", "route": "legal", "phrases": ["power of attorney"]}]}}"#,
    )
    .expect("valid config");
    let conversation = conversation();
    let decision = evaluate(&config, &conversation);
    assert!(
        decision.escalate,
        "the bench conversation asks for a person"
    );

    let policy = rate(budget, || {
        evaluate(black_box(&config), black_box(&conversation))
            .fired
            .len()
    });
    let lowercase = rate(budget, || {
        black_box(&conversation)
            .turns
            .iter()
            .map(|t| t.text.to_lowercase().len())
            .sum()
    });
    let naive = rate(budget, || {
        black_box(&conversation)
            .turns
            .iter()
            .filter(|t| t.text.to_lowercase().contains("agent"))
            .count()
    });
    println!(
        "typical 10-turn conversation, one core, {:.1} s per measurement",
        budget.as_secs_f64()
    );
    println!("{:<34} {:>14.0} /s", "evaluate (all five triggers)", policy);
    println!(
        "{:<34} {:>14.0} /s   evaluate costs {:.1}x",
        "baseline: lowercase every turn",
        lowercase,
        lowercase / policy
    );
    println!(
        "{:<34} {:>14.0} /s   evaluate costs {:.1}x",
        "baseline: naive contains(\"agent\")",
        naive,
        naive / policy
    );
    turns_per_second(budget, &config);
}

/// One customer turn per evaluation, cycling through the corpus's
/// evaluation split (every language, every kind of turn).
fn turns_per_second(budget: Duration, config: &PolicyConfig) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/policy/corpus");
    let mut conversations = Vec::new();
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".eval.jsonl") {
            let text = std::fs::read_to_string(&path).expect("readable");
            let cases = evaluation::load(&text).expect("parses");
            conversations.extend(cases.iter().map(|c| c.conversation()));
        }
    }
    assert!(!conversations.is_empty(), "no evaluation turns in {dir}");
    let mean_chars = conversations
        .iter()
        .map(|c| {
            c.turns
                .iter()
                .map(|t| t.text.chars().count())
                .sum::<usize>()
        })
        .sum::<usize>()
        / conversations.len();
    let mut next = 0usize;
    let mut one_turn = |f: &dyn Fn(&Conversation) -> usize| {
        next = (next + 1) % conversations.len();
        f(black_box(&conversations[next]))
    };
    let mut per_turn = |layers: Layers| {
        rate(budget, || {
            one_turn(&|c| evaluate_with(config, c, layers).fired.len())
        })
    };
    let rules = per_turn(Layers {
        rules: true,
        model: false,
    });
    let model = per_turn(Layers {
        rules: false,
        model: true,
    });
    let both = per_turn(Layers::BOTH);
    let lowercase = rate(budget, || {
        one_turn(&|c| c.turns.iter().map(|t| t.text.to_lowercase().len()).sum())
    });
    println!(
        "\none customer turn per evaluation, {} corpus turns of {mean_chars} characters on average, one core",
        conversations.len()
    );
    for (name, figure) in [
        ("rules alone", rules),
        ("model alone", model),
        ("rules, then model (production)", both),
    ] {
        println!(
            "{name:<34} {figure:>14.0} turns/s   {:.1}x the lowercase baseline's cost",
            lowercase / figure
        );
    }
    println!(
        "{:<34} {:>14.0} turns/s",
        "baseline: lowercase the turn", lowercase
    );
}
