//! What the judge writes to `tracing` never holds the customer's words, the
//! model's reason or the API key. A subscriber records every span and event
//! field of a run that succeeds and of runs that fail.

mod support;

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_policy_judge::{ApiKey, Judge, JudgeConfig, JudgeRequest, Labels, Speaker, Turn};
use serde_json::json;
use support::{Behaviour, FakeOpenAi};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const KEY: &str = "sk-privacy-0b5e61";
const TURN: &str = "I need to speak to a person, my IBAN is DE89370400440532013000";
const EARLIER: &str = "Hello Marguerite, how can I help?";

#[derive(Clone, Default)]
struct Recorder {
    text: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

impl Recorder {
    fn text(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if let Ok(mut text) = self.text.lock() {
            let _ = write!(text, "\nspan {} ", span.metadata().name());
            span.record(&mut Fields(&mut text));
        }
        Id::from_u64(self.next_id.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        if let Ok(mut text) = self.text.lock() {
            values.record(&mut Fields(&mut text));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if let Ok(mut text) = self.text.lock() {
            let _ = write!(text, "\nevent {} ", event.metadata().target());
            event.record(&mut Fields(&mut text));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn request() -> JudgeRequest {
    JudgeRequest::new("de", TURN, Labels::Both)
        .with_earlier_turns([Turn::new(Speaker::Ai, EARLIER)])
}

#[tokio::test]
async fn spans_and_events_hold_neither_text_nor_key() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());

    let reason = "the customer Marguerite asked for a person";
    let answer = json!({"explicit_request": true, "distress": false, "reason": reason}).to_string();
    let behaviours = [
        Behaviour::Content(json!(answer)),
        Behaviour::Content(json!(format!("{TURN} is not JSON"))),
        Behaviour::Status(500),
        Behaviour::Sleep(Duration::from_secs(5)),
    ];
    for behaviour in behaviours {
        let endpoint = FakeOpenAi::start(behaviour, Some(KEY)).await;
        let mut config = JudgeConfig::new(endpoint.base_url(), "judge-mini");
        config.api_key = Some(ApiKey::new(KEY));
        config.timeout = Duration::from_millis(300);
        config.max_calls_per_minute = 1;
        let judge = Judge::new(config).expect("valid configuration");
        let _ = judge.judge(request()).await;
        // Over budget: the refusal is logged too.
        let _ = judge.judge(request()).await;
    }

    let logged = recorder.text();
    assert!(
        logged.contains("policy_judge"),
        "no span recorded:\n{logged}"
    );
    assert!(logged.contains("JUDGE_OVER_BUDGET"), "{logged}");
    assert!(logged.contains("JUDGE_MALFORMED"), "{logged}");
    assert!(logged.contains("JUDGE_TIMEOUT"), "{logged}");
    for secret in [
        KEY,
        "DE89370400440532013000",
        "speak to a person",
        "Marguerite",
    ] {
        assert!(!logged.contains(secret), "{secret:?} was logged:\n{logged}");
    }
}
