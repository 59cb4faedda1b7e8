//! `baton handoff chat <id>`: plays the customer of a chat handoff in a
//! terminal (what a runtime does with ConverseHandoff). Each line typed is
//! a message; the human's messages, typing and read receipts are printed
//! as they come. A broken stream is reopened from the last sequence seen,
//! and the messages not yet seen come back are sent again with their ids
//! (stored once); the command ends when the conversation does.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_proto::handoff::v1::converse_handoff_request::Kind as RequestKind;
use baton_proto::handoff::v1::converse_handoff_response::Kind as ResponseKind;
use baton_proto::handoff::v1::{ConverseHandoffRequest, ConverseOpen};
use baton_proto::types::v1::{
    ChatAuthor, ChatEndReason, ChatEntry, ChatEntryKind, ChatMessageDraft,
};
use serde_json::json;
use tokio::sync::mpsc;
use tonic::Code;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use super::{CliError, Client};
use crate::exit;

/// How often a broken stream is reopened before giving up.
const REOPEN_ATTEMPTS: u32 = 30;

/// The conversation as this terminal has it.
struct Customer {
    handoff_id: String,
    last_seen: u64,
    /// Messages typed and not yet back as entries, by id.
    unacknowledged: BTreeMap<String, ChatMessageDraft>,
    sent: u64,
    json: bool,
}

enum Outcome {
    Ended(Option<ChatEndReason>),
    /// The stream broke: reopen from `last_seen`.
    Broken(tonic::Status),
    /// The terminal's input ended and everything typed is stored.
    InputClosed,
}

pub(super) async fn chat(
    client: &mut Client,
    id: &str,
    after: u64,
    json: bool,
) -> Result<u8, CliError> {
    let mut customer = Customer {
        handoff_id: id.to_owned(),
        last_seen: after,
        unacknowledged: BTreeMap::new(),
        sent: 0,
        json,
    };
    // Lines from the terminal, read once, across reopened streams.
    let (lines_sender, mut lines) = mpsc::channel::<String>(16);
    // A thread of its own: reading a terminal blocks.
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if lines_sender.blocking_send(line).is_err() {
                return;
            }
        }
    });
    if !json {
        eprintln!(
            "chatting as the customer of handoff {id}; type a line and press Enter (Ctrl-D ends)"
        );
    }
    let mut failures = 0;
    loop {
        match customer.converse(client, &mut lines).await {
            Ok(Outcome::Ended(reason)) => {
                return Ok(match reason {
                    Some(ChatEndReason::Failed) => exit::HANDOFF_FAILED,
                    Some(ChatEndReason::Cancelled) => exit::HANDOFF_CANCELLED,
                    _ => exit::OK,
                });
            }
            Ok(Outcome::InputClosed) => return Ok(exit::OK),
            Ok(Outcome::Broken(status)) | Err(status) => {
                let retry = matches!(
                    status.code(),
                    Code::Unavailable | Code::Internal | Code::Unknown | Code::Cancelled
                );
                failures += 1;
                if !retry || failures > REOPEN_ATTEMPTS {
                    return Err(status.into());
                }
                if !customer.json {
                    eprintln!(
                        "(connection lost: {}; reopening after #{})",
                        status.message(),
                        customer.last_seen
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Customer {
    async fn converse(
        &mut self,
        client: &mut Client,
        lines: &mut mpsc::Receiver<String>,
    ) -> Result<Outcome, tonic::Status> {
        let (requests, outgoing) = mpsc::channel(16);
        let open = ConverseHandoffRequest {
            kind: Some(RequestKind::Open(ConverseOpen {
                handoff_id: self.handoff_id.clone(),
                after_sequence: self.last_seen,
            })),
        };
        requests.send(open).await.ok();
        for draft in self.unacknowledged.values() {
            requests.send(message(draft.clone())).await.ok();
        }
        let mut stream = client
            .converse_handoff(ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        let mut input_open = true;
        loop {
            tokio::select! {
                response = stream.message() => match response {
                    Ok(Some(response)) => {
                        if let Some(reason) = self.show(response.kind) {
                            return Ok(Outcome::Ended(reason));
                        }
                        if !input_open && self.unacknowledged.is_empty() {
                            return Ok(Outcome::InputClosed);
                        }
                    }
                    Ok(None) => return Ok(Outcome::Broken(tonic::Status::unavailable("the stream ended"))),
                    Err(status) => return Ok(Outcome::Broken(status)),
                },
                line = lines.recv(), if input_open => match line {
                    Some(line) if line.trim().is_empty() => {}
                    Some(line) => {
                        self.sent += 1;
                        let draft = ChatMessageDraft {
                            client_message_id: format!("cli-{}-{}", uuid::Uuid::now_v7().simple(), self.sent),
                            text: line,
                            attachments: Vec::new(),
                        };
                        self.unacknowledged.insert(draft.client_message_id.clone(), draft.clone());
                        if requests.send(message(draft)).await.is_err() {
                            return Ok(Outcome::Broken(tonic::Status::unavailable("the stream closed")));
                        }
                    }
                    None => {
                        input_open = false;
                        if self.unacknowledged.is_empty() {
                            return Ok(Outcome::InputClosed);
                        }
                    }
                },
            }
        }
    }

    /// Prints a response; the end's reason once the conversation is over.
    fn show(&mut self, kind: Option<ResponseKind>) -> Option<Option<ChatEndReason>> {
        match kind? {
            ResponseKind::Opened(opened) => {
                if self.json {
                    println!(
                        "{}",
                        json!({"opened": {"state": opened.state, "last_sequence": opened.last_sequence}})
                    );
                }
                None
            }
            ResponseKind::Entry(entry) => {
                if entry.sequence <= self.last_seen {
                    return None;
                }
                self.last_seen = entry.sequence;
                self.unacknowledged.remove(&entry.client_message_id);
                self.print_entry(&entry);
                (entry.kind == ChatEntryKind::Ended as i32)
                    .then(|| ChatEndReason::try_from(entry.end_reason).ok())
            }
            ResponseKind::Typing(typing) => {
                if self.json {
                    println!("{}", json!({"typing": typing.active}));
                } else if typing.active {
                    eprintln!("(the agent is typing…)");
                }
                None
            }
            ResponseKind::Read(read) => {
                if self.json {
                    println!("{}", json!({"read_through": read.through_sequence}));
                }
                None
            }
        }
    }

    fn print_entry(&self, entry: &ChatEntry) {
        let author = match ChatAuthor::try_from(entry.author) {
            Ok(ChatAuthor::Customer) => "you",
            Ok(ChatAuthor::Human) => "agent",
            _ => "baton",
        };
        if self.json {
            println!(
                "{}",
                json!({
                    "sequence": entry.sequence,
                    "author": author,
                    "client_message_id": entry.client_message_id,
                    "text": entry.text,
                    "ended": entry.kind == ChatEntryKind::Ended as i32,
                })
            );
        } else {
            println!("#{} {author}: {}", entry.sequence, entry.text);
        }
    }
}

fn message(draft: ChatMessageDraft) -> ConverseHandoffRequest {
    ConverseHandoffRequest {
        kind: Some(RequestKind::Message(draft)),
    }
}
