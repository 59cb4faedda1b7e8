//! The JSON of a chat relayed through a platform's endpoint, both ways.
//!
//! To the platform (`chat_url`), Standard Webhooks bodies: `type`
//! `baton.chat.message` or `baton.chat.ended` for entries of the
//! conversation log (each with its own stable `webhook-id`), and
//! `baton.chat.typing` / `baton.chat.read` for the customer's hints; every
//! `data` names `handoff_id`, `attempt` and `reply_url`, where the platform
//! posts the human's side. From the platform: one [`FromPlatform`] per
//! request, signed the same way.

use std::time::{Duration, SystemTime};

use baton_connector_sdk::chat::{
    ChatAttachment, ChatAuthor, ChatEndReason, ChatEntry, ChatEntryKind, ChatMessageDraft,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The most characters of a message's text (the contract's limit).
const MAX_TEXT_CHARS: usize = 4096;
/// The most characters of a message id.
const MAX_ID_CHARS: usize = 128;
const MAX_ATTACHMENTS: usize = 10;
const MAX_URL_CHARS: usize = 2048;
const MAX_NAME_CHARS: usize = 256;
const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;

/// A file shared by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub url: String,
    pub media_type: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub name: String,
}

/// A message of the human, with the platform's id of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanMessage {
    /// The platform's id: a message posted again with it is stored once.
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// What the platform posts to `/v1/chats/{handoff_id}/{attempt}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromPlatform {
    /// `{"kind":"message","message":{"id":…,"text":…,"attachments":[…]}}`
    Message { message: HumanMessage },
    /// `{"kind":"typing","active":true}`
    Typing { active: bool },
    /// `{"kind":"read","through_sequence":7}`
    Read { through_sequence: u64 },
    /// `{"kind":"end"}`: the human ended the chat; the transfer completes.
    End,
}

type Object = serde_json::Map<String, Value>;

/// An object's fields, each read once, the unread ones refused: every
/// error names the field by its path.
struct Fields<'a> {
    object: &'a Object,
    path: &'a str,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, path: &'a str) -> Result<Self, String> {
        let object = value.as_object().ok_or_else(|| {
            format!(
                "{}: must be a JSON object",
                if path.is_empty() { "body" } else { path }
            )
        })?;
        Ok(Self {
            object,
            path,
            read: Vec::new(),
        })
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn optional<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>, String> {
        self.read.push(key);
        self.object
            .get(key)
            .map(|value| T::deserialize(value).map_err(|e| format!("{}: {e}", self.name(key))))
            .transpose()
    }

    fn required<T: serde::de::DeserializeOwned>(&mut self, key: &'static str) -> Result<T, String> {
        self.optional(key)?
            .ok_or_else(|| format!("{}: required", self.name(key)))
    }

    fn value(&mut self, key: &'static str) -> Result<&'a Value, String> {
        self.read.push(key);
        self.object
            .get(key)
            .ok_or_else(|| format!("{}: required", self.name(key)))
    }

    /// Refuses the fields not read.
    fn done(self) -> Result<(), String> {
        match self
            .object
            .keys()
            .find(|k| !self.read.contains(&k.as_str()))
        {
            Some(unknown) => Err(format!("{}: unknown field", self.name(unknown))),
            None => Ok(()),
        }
    }
}

impl FromPlatform {
    /// Parses a request's body; the error names the field.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("body: not JSON ({})", e.classify_text()))?;
        let mut fields = Fields::of(&value, "")?;
        let kind: String = fields.required("kind")?;
        let parsed = match kind.as_str() {
            "message" => {
                let message = HumanMessage::read(fields.value("message")?)?;
                message.check()?;
                Self::Message { message }
            }
            "typing" => Self::Typing {
                active: fields.required("active")?,
            },
            "read" => Self::Read {
                through_sequence: fields.required("through_sequence")?,
            },
            "end" => Self::End,
            _ => return Err("kind: one of message, typing, read, end".into()),
        };
        fields.done()?;
        Ok(parsed)
    }
}

trait ClassifyText {
    fn classify_text(&self) -> &'static str;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "it ends early",
            _ => "a syntax error",
        }
    }
}

impl HumanMessage {
    fn read(value: &Value) -> Result<Self, String> {
        let mut fields = Fields::of(value, "message")?;
        let id = fields.required("id")?;
        let text = fields.optional("text")?.unwrap_or_default();
        let attachments = match fields.optional::<Vec<Value>>("attachments")? {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(n, value)| {
                    let path = format!("message.attachments[{n}]");
                    let mut fields = Fields::of(value, &path)?;
                    let attachment = Attachment {
                        url: fields.required("url")?,
                        media_type: fields.required("media_type")?,
                        size_bytes: fields.required("size_bytes")?,
                        name: fields.optional("name")?.unwrap_or_default(),
                    };
                    fields.done()?;
                    Ok(attachment)
                })
                .collect::<Result<_, String>>()?,
            None => Vec::new(),
        };
        fields.done()?;
        Ok(Self {
            id,
            text,
            attachments,
        })
    }

    /// The contract's limits, with the field of the first one broken.
    fn check(&self) -> Result<(), String> {
        let id_chars = self.id.chars().count();
        if id_chars == 0 || id_chars > MAX_ID_CHARS {
            return Err(format!(
                "message.id: must be 1 to {MAX_ID_CHARS} characters"
            ));
        }
        if self.text.chars().count() > MAX_TEXT_CHARS {
            return Err(format!("message.text: at most {MAX_TEXT_CHARS} characters"));
        }
        if self.text.trim().is_empty() && self.attachments.is_empty() {
            return Err("message.text: a message has text, attachments or both".into());
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(format!("message.attachments: at most {MAX_ATTACHMENTS}"));
        }
        for (n, attachment) in self.attachments.iter().enumerate() {
            let field = format!("message.attachments[{n}]");
            let url =
                reqwest::Url::parse(&attachment.url).map_err(|e| format!("{field}.url: {e}"))?;
            let loopback = url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                    || h == "[::1]"
            });
            if attachment.url.chars().count() > MAX_URL_CHARS
                || !(url.scheme() == "https" || (url.scheme() == "http" && loopback))
            {
                return Err(format!(
                    "{field}.url: an https URL (http only on loopback) of at most {MAX_URL_CHARS} characters"
                ));
            }
            if attachment.media_type.is_empty() {
                return Err(format!("{field}.media_type: required"));
            }
            if attachment.size_bytes > MAX_ATTACHMENT_BYTES {
                return Err(format!("{field}.size_bytes: at most 25 MiB"));
            }
            if attachment.name.chars().count() > MAX_NAME_CHARS {
                return Err(format!("{field}.name: at most {MAX_NAME_CHARS} characters"));
            }
        }
        Ok(())
    }

    /// The draft the relay sends, under the platform's id.
    pub fn draft(&self) -> ChatMessageDraft {
        ChatMessageDraft {
            client_message_id: self.id.clone(),
            text: self.text.clone(),
            attachments: self
                .attachments
                .iter()
                .map(|a| ChatAttachment {
                    url: a.url.clone(),
                    media_type: a.media_type.clone(),
                    size_bytes: a.size_bytes,
                    name: a.name.clone(),
                })
                .collect(),
        }
    }
}

/// The transfer a piece of the chat belongs to, and where the platform
/// answers.
#[derive(Debug, Clone, Copy)]
pub struct ChatTransfer<'a> {
    pub handoff_id: &'a str,
    pub attempt: u32,
    pub reply_url: &'a str,
}

/// The `webhook-id` of an entry: derived from transfer and sequence, the
/// same on every retry, after a reconnect and after a restart.
pub fn entry_id(handoff_id: &str, attempt: u32, sequence: u64) -> String {
    let digest = Sha256::digest(format!("{handoff_id}\n{attempt}\nchat\n{sequence}"));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

fn rfc3339(time: SystemTime) -> String {
    humantime_serde::re::humantime::format_rfc3339_millis(time).to_string()
}

fn envelope(kind: &str, timestamp: SystemTime, transfer: ChatTransfer<'_>, data: Value) -> Vec<u8> {
    let mut data = data;
    data["handoff_id"] = json!(transfer.handoff_id);
    data["attempt"] = json!(transfer.attempt);
    data["reply_url"] = json!(transfer.reply_url);
    json!({ "type": kind, "timestamp": rfc3339(timestamp), "data": data })
        .to_string()
        .into_bytes()
}

/// An entry's body: its `timestamp` is the entry's, so that the body of a
/// delivery made again is the same.
pub fn entry_body(transfer: ChatTransfer<'_>, entry: &ChatEntry) -> Vec<u8> {
    let created = entry
        .create_time
        .as_ref()
        .map_or(SystemTime::UNIX_EPOCH, |t| {
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(t.seconds).unwrap_or(0))
                + Duration::from_nanos(u64::try_from(t.nanos).unwrap_or(0))
        });
    if entry.kind == ChatEntryKind::Ended as i32 {
        let reason = match ChatEndReason::try_from(entry.end_reason) {
            Ok(ChatEndReason::Completed) => "completed",
            Ok(ChatEndReason::Cancelled) => "cancelled",
            Ok(ChatEndReason::HandedBack) => "handed_back",
            _ => "failed",
        };
        return envelope(
            "baton.chat.ended",
            created,
            transfer,
            json!({ "sequence": entry.sequence, "reason": reason, "text": entry.text }),
        );
    }
    let author = match ChatAuthor::try_from(entry.author) {
        Ok(ChatAuthor::Human) => "human",
        Ok(ChatAuthor::Customer) => "customer",
        _ => "system",
    };
    let attachments: Vec<Attachment> = entry
        .attachments
        .iter()
        .map(|a| Attachment {
            url: a.url.clone(),
            media_type: a.media_type.clone(),
            size_bytes: a.size_bytes,
            name: a.name.clone(),
        })
        .collect();
    envelope(
        "baton.chat.message",
        created,
        transfer,
        json!({
            "sequence": entry.sequence,
            "author": author,
            "author_name": entry.author_name,
            "id": entry.client_message_id,
            "text": entry.text,
            "attachments": attachments,
            "create_time": rfc3339(created),
        }),
    )
}

pub fn typing_body(transfer: ChatTransfer<'_>, active: bool) -> Vec<u8> {
    envelope(
        "baton.chat.typing",
        SystemTime::now(),
        transfer,
        json!({ "author": "customer", "active": active }),
    )
}

pub fn read_body(transfer: ChatTransfer<'_>, through_sequence: u64) -> Vec<u8> {
    envelope(
        "baton.chat.read",
        SystemTime::now(),
        transfer,
        json!({ "author": "customer", "through_sequence": through_sequence }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_parses_and_a_mistake_names_its_field() {
        assert_eq!(
            FromPlatform::parse(br#"{"kind":"typing","active":true}"#),
            Ok(FromPlatform::Typing { active: true })
        );
        assert_eq!(
            FromPlatform::parse(br#"{"kind":"end"}"#),
            Ok(FromPlatform::End {})
        );
        let message = FromPlatform::parse(
            br#"{"kind":"message","message":{"id":"p-1","text":"hi","attachments":[{"url":"https://files.example/a.png","media_type":"image/png","size_bytes":12}]}}"#,
        )
        .expect("parses");
        let FromPlatform::Message { message } = message else {
            panic!("a message: {message:?}");
        };
        assert_eq!(message.draft().client_message_id, "p-1");
        assert_eq!(message.draft().attachments[0].size_bytes, 12);
        for (body, field) in [
            (
                r#"{"kind":"message","message":{"text":"hi"}}"#,
                "message.id: required",
            ),
            (
                r#"{"kind":"message","message":{"id":7,"text":"hi"}}"#,
                "message.id: invalid type",
            ),
            (r#"{"kind":"typing"}"#, "active: required"),
            (r#"{"kind":"end","extra":1}"#, "extra: unknown field"),
            (r#"{"kind":"message""#, "body: not JSON"),
            (
                r#"{"kind":"message","message":{"id":"","text":"hi"}}"#,
                "message.id",
            ),
            (
                r#"{"kind":"message","message":{"id":"p","text":" "}}"#,
                "message.text",
            ),
            (
                r#"{"kind":"read","through_sequence":"x"}"#,
                "through_sequence",
            ),
            (
                r#"{"kind":"message","message":{"id":"p","txt":"hi"}}"#,
                "message.txt: unknown field",
            ),
            (r#"{"kind":"wave"}"#, "kind: one of"),
            (r#"{"active":true}"#, "kind: required"),
            (
                r#"{"kind":"message","message":{"id":"p","attachments":[{"url":"http://files.example/a","media_type":"a/b","size_bytes":1}]}}"#,
                "message.attachments[0].url",
            ),
            (
                r#"{"kind":"message","message":{"id":"p","attachments":[{"url":"https://f.example/a","media_type":"","size_bytes":1}]}}"#,
                "message.attachments[0].media_type",
            ),
        ] {
            let error = FromPlatform::parse(body.as_bytes()).expect_err(body);
            assert!(error.contains(field), "{body}: {error}");
        }
    }

    #[test]
    fn an_entry_s_body_and_id_are_the_same_each_time_and_name_the_transfer() {
        let transfer = ChatTransfer {
            handoff_id: "h1",
            attempt: 1,
            reply_url: "https://webhook.example/v1/chats/h1/1",
        };
        let entry = ChatEntry {
            handoff_id: "h1".into(),
            sequence: 4,
            kind: ChatEntryKind::Message as i32,
            author: ChatAuthor::Customer as i32,
            client_message_id: "c-4".into(),
            text: "still there?".into(),
            create_time: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(entry_body(transfer, &entry), entry_body(transfer, &entry));
        assert_eq!(entry_id("h1", 1, 4), entry_id("h1", 1, 4));
        assert_ne!(entry_id("h1", 1, 4), entry_id("h1", 1, 5));
        assert_ne!(entry_id("h1", 1, 4), entry_id("h1", 2, 4));
        let body: Value = serde_json::from_slice(&entry_body(transfer, &entry)).expect("JSON");
        assert_eq!(body["type"], "baton.chat.message");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:01.000Z");
        assert_eq!(body["data"]["id"], "c-4");
        assert_eq!(body["data"]["author"], "customer");
        assert_eq!(body["data"]["reply_url"], transfer.reply_url);
        let ended = ChatEntry {
            kind: ChatEntryKind::Ended as i32,
            author: ChatAuthor::System as i32,
            end_reason: ChatEndReason::Cancelled as i32,
            ..entry
        };
        let body: Value = serde_json::from_slice(&entry_body(transfer, &ended)).expect("JSON");
        assert_eq!(body["type"], "baton.chat.ended");
        assert_eq!(body["data"]["reason"], "cancelled");
    }
}
