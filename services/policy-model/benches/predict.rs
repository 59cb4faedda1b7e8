//! Throughput of `Model::predict`, against normalising the same turns in
//! the same run (the floor any reader of the text pays). Measured and
//! printed, not asserted: `cargo bench -p baton-policy-model`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use baton_policy_model::{Label, Model, Scratch, normalize_into};

/// About 100 characters each, in the corpus's languages.
const TURNS: &[&str] = &[
    "Hi, I've been trying to sort out my bill for an hour. Can I please speak with an actual person now?",
    "Je voudrais parler à quelqu'un de chez vous, votre robot ne comprend rien à ma demande de remboursement.",
    "Hola, necesito cambiar la dirección de entrega de mi pedido, ¿me pueden ayudar con eso hoy mismo, gracias?",
    "Ich habe eine Frage zu meiner letzten Rechnung, da steht ein Betrag drauf, den ich nicht verstehe. Danke!",
    "Olá, quero cancelar a minha assinatura, mas o site dá sempre erro quando tento. Podem verificar por favor?",
    "Buongiorno, il pacco risulta consegnato ma non l'ho mai ricevuto. Cosa devo fare adesso per il rimborso?",
    "Goedemiddag, ik wil graag een medewerker spreken over mijn contract, de chatbot begrijpt me helemaal niet.",
    "先月の請求金額が間違っているようです。担当者の方と直接話がしたいので、電話をつないでいただけますか。よろしくお願いします。",
    "Здравствуйте, у меня списали деньги дважды за один заказ. Позовите, пожалуйста, живого оператора, срочно.",
    "what is my balance",
];

fn measure(name: &str, baseline: Option<f64>, mut run: impl FnMut(&str)) -> f64 {
    // Warm up, then run for a fixed wall time.
    for t in TURNS {
        run(t);
    }
    let budget = Duration::from_millis(700);
    let started = Instant::now();
    let mut turns = 0u64;
    while started.elapsed() < budget {
        for t in TURNS {
            run(black_box(t));
        }
        turns += TURNS.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = turns as f64 / secs;
    let relative = baseline.map_or(String::new(), |b| {
        format!("  ({:.1}× the baseline's time)", b / rate)
    });
    println!(
        "{name:<28} {rate:>12.0} turns/s  {:>7.2} µs/turn{relative}",
        1e6 / rate
    );
    rate
}

fn main() {
    let model = Model::embedded();
    let chars: usize = TURNS.iter().map(|t| t.chars().count()).sum();
    println!(
        "{} turns, {:.0} characters on average, one thread",
        TURNS.len(),
        chars as f64 / TURNS.len() as f64
    );

    let mut buffer = String::new();
    let baseline = measure("baseline: normalise only", None, |t| {
        normalize_into(t, &mut buffer);
        black_box(&buffer);
    });
    let mut scratch = Scratch::default();
    measure("predict_with (own buffer)", Some(baseline), |t| {
        black_box(model.predict_with(&mut scratch, t));
    });
    measure("predict (thread buffer)", Some(baseline), |t| {
        black_box(model.predict(t));
    });
    measure("explain (top 3)", Some(baseline), |t| {
        black_box(model.explain(t, Label::ExplicitRequest, 3));
    });
}
