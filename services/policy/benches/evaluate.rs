//! Evaluations per second on one core for a typical 10-turn conversation,
//! next to two baselines measured in the same run on the same text: folding
//! it to lower case (the least any text policy must do) and a naive
//! `contains("agent")` scan. Run with `cargo bench -p baton-policy`.

use baton_policy::{AiOutcome, Conversation, Intent, PolicyConfig, Turn, evaluate};
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
}
