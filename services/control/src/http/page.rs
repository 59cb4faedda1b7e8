//! The context of a handoff as its reader sees it: a JSON document and a
//! self-contained screen-pop page, sensitive values masked and whatever the
//! customer said escaped.

use baton_proto::types::v1 as pb;
use serde_json::{Value, json};

use crate::convert::context::{self as decoded, reason_name, speaker_name};
use crate::domain::Handoff;

/// A masked value shows nothing but that it exists.
const MASK: &str = "••••••";

/// The context as JSON, sensitive entity values masked.
pub fn context_document(handoff: &Handoff) -> Value {
    let context = &decoded::context(&handoff.context);
    json!({
        "handoff_id": handoff.id,
        "language": decoded::conversation(&handoff.conversation).language,
        "summary": context.summary,
        "intent": context.intent.as_ref().map(|i| json!({"name": i.name, "confidence": i.confidence})),
        "entities": context.entities.iter().map(|e| json!({
            "name": e.name,
            "type": e.r#type,
            "sensitive": e.sensitive,
            "value": if e.sensitive { MASK } else { e.value.as_str() },
        })).collect::<Vec<_>>(),
        "transcript": context.transcript.iter().map(|t| json!({
            "speaker": speaker_name(t.speaker),
            "text": t.text,
            "at": t.at.map(|at| at.seconds),
        })).collect::<Vec<_>>(),
        "attempts": context.attempts.iter().map(|a| json!({
            "action": a.action,
            "outcome": outcome_name(a.outcome),
            "detail": a.detail,
        })).collect::<Vec<_>>(),
        "reason": context.reason.as_ref().map(|r| json!({"kind": reason_name(r.kind), "detail": r.detail})),
        "agent_notes": context.agent_notes,
        "priority": context.priority,
    })
}

fn outcome_name(outcome: i32) -> &'static str {
    match pb::AttemptOutcome::try_from(outcome) {
        Ok(pb::AttemptOutcome::Partial) => "partial",
        Ok(pb::AttemptOutcome::Failed) => "failed",
        Ok(pb::AttemptOutcome::NotUnderstood) => "not understood",
        Ok(pb::AttemptOutcome::Refused) => "refused",
        Ok(pb::AttemptOutcome::Succeeded) => "succeeded",
        _ => "unknown",
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A readable, self-contained page: what the human reads as the call
/// connects.
pub fn screen_pop_page(handoff: &Handoff) -> String {
    let context = &decoded::context(&handoff.context);
    let intent = context
        .intent
        .as_ref()
        .map(|i| {
            format!(
                "{} <span class=muted>({:.0}% confident)</span>",
                escape(&i.name),
                i.confidence * 100.0
            )
        })
        .unwrap_or_else(|| "<span class=muted>not identified</span>".into());
    let reason = context
        .reason
        .as_ref()
        .map(|r| {
            format!(
                "{} — {}",
                reason_name(r.kind).replace('_', " "),
                escape(&r.detail)
            )
        })
        .unwrap_or_default();
    let entities: String = context
        .entities
        .iter()
        .map(|e| {
            let value = if e.sensitive {
                format!("<span class=masked title=\"sensitive\">{MASK}</span>")
            } else {
                escape(&e.value)
            };
            format!(
                "<tr><th>{}</th><td>{value}</td></tr>",
                escape(&e.name.replace('_', " "))
            )
        })
        .collect();
    let attempts: String = context
        .attempts
        .iter()
        .map(|a| {
            format!(
                "<li><b>{}</b> — {}{}</li>",
                escape(&a.action),
                outcome_name(a.outcome),
                if a.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape(&a.detail))
                }
            )
        })
        .collect();
    let transcript: String = context
        .transcript
        .iter()
        .map(|t| {
            let speaker = speaker_name(t.speaker);
            format!(
                "<li class={speaker}><span class=who>{speaker}</span> {}</li>",
                escape(&t.text)
            )
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Handoff — {summary_title}</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}}
main{{max-width:860px;margin:0 auto;padding:1rem}}
section{{background:#fff;border-radius:10px;padding:1rem 1.25rem;margin:.75rem 0;box-shadow:0 1px 2px #0002}}
h1{{font-size:1.3rem;margin:.2rem 0}} h2{{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:#5b6475;margin:0 0 .5rem}}
.muted{{color:#5b6475}} .masked{{letter-spacing:.1em;color:#8a93a5}}
table{{border-collapse:collapse}} th{{text-align:left;padding:.2rem 1rem .2rem 0;color:#5b6475;font-weight:500}}
ol{{padding-left:1.2rem}} .who{{display:inline-block;min-width:5.5rem;font-size:.8rem;text-transform:uppercase;color:#5b6475}}
li.customer .who{{color:#b44d12}} .priority{{float:right;font-weight:600}}
</style></head>
<body><main>
<section aria-labelledby="summary"><span class="priority">Priority {priority}</span><h2 id="summary">Summary</h2><h1>{summary}</h1>
<p><b>Intent:</b> {intent}<br><b>Why a human:</b> {reason}</p></section>
<section aria-labelledby="entities"><h2 id="entities">What we know</h2><table>{entities}</table></section>
<section aria-labelledby="tried"><h2 id="tried">What the AI tried</h2><ul>{attempts}</ul></section>
<section aria-labelledby="notes"><h2 id="notes">Notes from the AI</h2><p>{notes}</p></section>
<section aria-labelledby="transcript"><h2 id="transcript">Transcript</h2><ol>{transcript}</ol></section>
</main></body></html>"#,
        summary_title = escape(&context.summary.chars().take(60).collect::<String>()),
        summary = escape(&context.summary),
        priority = context.priority,
        notes = escape(&context.agent_notes),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::Handoff;
    use uuid::Uuid;

    /// A pending handoff whose context has markup and a sensitive card.
    pub(crate) fn handoff() -> Handoff {
        Handoff {
            id: Uuid::now_v7().to_string(),
            tenant: "default".into(),
            request_id: "r".into(),
            request_fingerprint: "f".into(),
            context: decoded::encode_context(&pb::HandoffContext {
                summary: "<script>alert(1)</script> double charge".into(),
                entities: vec![pb::Entity {
                    name: "card".into(),
                    value: "4111111111111111".into(),
                    r#type: "card".into(),
                    sensitive: true,
                }],
                ..Default::default()
            }),
            last_sequence: 1,
            ..Handoff::default()
        }
    }

    #[test]
    fn the_page_escapes_what_the_customer_said_and_masks_sensitive_values() {
        let page = screen_pop_page(&handoff());
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("4111111111111111"));
        let json = context_document(&handoff()).to_string();
        assert!(!json.contains("4111111111111111"));
    }
}
