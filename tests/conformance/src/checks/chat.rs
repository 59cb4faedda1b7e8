//! The chat relay (`ConverseTransfer`). A connector without `chat` must
//! answer it with UNIMPLEMENTED. One with `chat` is checked on a chat
//! transfer to the profile's `chat_queue`, the kit playing the control
//! service and the runner's [`ChatHuman`](crate::ChatHuman) the human:
//! `opened` names a sequence; entries reach the human in order; a message
//! of the human not yet back as an entry is sent again, with its id, after
//! a reconnect, and once back it is not sent again; ENDED reaches the
//! human and closes the relay.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::converse_transfer_request::Kind as RequestKind;
use baton_proto::connector::v1::converse_transfer_response::Kind as ResponseKind;
use baton_proto::connector::v1::{
    ConverseTransferOpen, ConverseTransferRequest, ConverseTransferResponse, TransferEventKind,
};
use baton_proto::types::v1::{
    self as pb, ChatAuthor, ChatEndReason, ChatEntry, ChatEntryKind, TransferMode,
};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use super::Session;
use crate::ChatHuman;
use crate::client::{CALL_TIMEOUT, Follower};
use crate::report::Outcome;
use crate::requests::{self, TENANT};

const IDS: [&str; 4] = [
    "chat.opened",
    "chat.entries_in_order",
    "chat.resent_by_id_after_reconnect",
    "chat.ended_closes",
];

/// The kit's side of one ConverseTransfer stream.
struct Relay {
    send: mpsc::Sender<ConverseTransferRequest>,
    receive: Streaming<ConverseTransferResponse>,
}

impl Relay {
    /// Opens the relay of a transfer; the stream, or how it was refused.
    async fn open(
        session: &Session,
        handoff_id: &str,
        attempt: u32,
    ) -> Result<Relay, tonic::Status> {
        let (send, requests) = mpsc::channel(16);
        let _ = send
            .send(ConverseTransferRequest {
                kind: Some(RequestKind::Open(ConverseTransferOpen {
                    handoff_id: handoff_id.into(),
                    attempt,
                    tenant: TENANT.into(),
                })),
            })
            .await;
        let mut client = ConnectorServiceClient::new(session.client.channel.clone());
        let receive = timeout(
            CALL_TIMEOUT,
            client.converse_transfer(ReceiverStream::new(requests)),
        )
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("ConverseTransfer: no answer"))??
        .into_inner();
        Ok(Relay { send, receive })
    }

    /// The connector's next message within `wait`; Ok(None) once it closed
    /// the stream.
    async fn next(&mut self, wait: Duration) -> Result<Option<ResponseKind>, String> {
        match timeout(wait, self.receive.message()).await {
            Err(_) => Err(format!("nothing from the connector within {wait:?}")),
            Ok(Err(status)) => Err(format!(
                "the relay ended with {:?}: {}",
                status.code(),
                status.message()
            )),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(response))) => Ok(response.kind),
        }
    }

    /// The `opened` answer's sequence, which must come first.
    async fn opened(&mut self, wait: Duration) -> Result<u64, String> {
        match self.next(wait).await? {
            Some(ResponseKind::Opened(opened)) => Ok(opened.after_sequence),
            other => Err(format!("the first answer is not opened but {other:?}")),
        }
    }

    /// The id of the human's next message (hints skipped).
    async fn next_message(&mut self, wait: Duration) -> Result<String, String> {
        // Bounded: hints in between are few.
        for _ in 0..64 {
            match self.next(wait).await? {
                Some(ResponseKind::Message(draft)) => return Ok(draft.client_message_id),
                Some(ResponseKind::Typing(_) | ResponseKind::Read(_)) => {}
                other => return Err(format!("expected a message of the human, got {other:?}")),
            }
        }
        Err("only hints, no message".into())
    }

    async fn entry(&self, entry: ChatEntry) -> Result<(), String> {
        self.send
            .send(ConverseTransferRequest {
                kind: Some(RequestKind::Entry(entry)),
            })
            .await
            .map_err(|_| "the relay closed".to_string())
    }
}

/// The conversation the checks build, one step per check.
struct Conversation {
    handoff_id: String,
    transfer: Follower,
    human: Arc<dyn ChatHuman>,
    relay: Option<Relay>,
    /// The entries the kit sent, by sequence.
    sent: u64,
}

fn entry(handoff_id: &str, sequence: u64, author: ChatAuthor, id: &str) -> ChatEntry {
    ChatEntry {
        handoff_id: handoff_id.into(),
        sequence,
        kind: ChatEntryKind::Message as i32,
        author: author as i32,
        client_message_id: id.into(),
        text: format!("conformance message {id}"),
        create_time: Some(SystemTime::now().into()),
        ..Default::default()
    }
}

impl Conversation {
    async fn send(&mut self, author: ChatAuthor, id: &str) -> Result<(), String> {
        let relay = self.relay.as_ref().ok_or("no relay open")?;
        self.sent += 1;
        relay
            .entry(entry(&self.handoff_id, self.sent, author, id))
            .await
    }

    /// Waits (bounded by `wait`) until the human received `count` entries;
    /// what they received.
    async fn human_received(&self, count: usize, wait: Duration) -> Result<Vec<u64>, String> {
        let until = tokio::time::Instant::now() + wait;
        let mut last = Vec::new();
        // Bounded by the wait: one look every 100 ms.
        while tokio::time::Instant::now() < until {
            last = self
                .human
                .received(&self.handoff_id)
                .await
                .map_err(|e| format!("the human side failed: {e:#}"))?;
            if last.len() >= count {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "the human received {last:?} within {wait:?}, not {count} entries"
        ))
    }

    async fn opened(&mut self, session: &Session) -> Result<String, String> {
        let mut relay = Relay::open(session, &self.handoff_id, 1)
            .await
            .map_err(|s| format!("ConverseTransfer refused: {:?} {}", s.code(), s.message()))?;
        let after = relay.opened(session.profile.transfer_timeout).await?;
        self.relay = Some(relay);
        if after != 0 {
            return Err(format!(
                "a new transfer's relay opened after sequence {after}, not 0"
            ));
        }
        Ok("opened after sequence 0".into())
    }

    async fn in_order(&mut self, session: &Session) -> Result<String, String> {
        for n in 1..=3 {
            self.send(ChatAuthor::Customer, &format!("kit-c-{n}"))
                .await?;
        }
        let received = self
            .human_received(3, session.profile.transfer_timeout)
            .await?;
        if received != [1, 2, 3] {
            return Err(format!("the human received {received:?}, not [1, 2, 3]"));
        }
        Ok("sequences 1, 2, 3 reached the human in order, once each".into())
    }

    async fn resent_by_id(&mut self, session: &Session) -> Result<String, String> {
        let wait = session.profile.transfer_timeout;
        let (human, handoff_id) = (self.human.clone(), self.handoff_id.clone());
        let say = |id: &'static str| {
            let human = human.clone();
            let handoff_id = handoff_id.clone();
            async move {
                human
                    .say(&handoff_id, 1, id, "conformance answer")
                    .await
                    .map_err(|e| format!("the human side failed: {e:#}"))
            }
        };
        say("kit-h-1").await?;
        let relay = self.relay.as_mut().ok_or("no relay open")?;
        let first = relay.next_message(wait).await?;
        if first != "kit-h-1" {
            return Err(format!(
                "the human's message came as {first:?}, not kit-h-1"
            ));
        }
        // The relay breaks before kit-h-1 is back as an entry.
        self.relay = None;
        let mut relay = Relay::open(session, &self.handoff_id, 1)
            .await
            .map_err(|s| format!("reopening refused: {:?} {}", s.code(), s.message()))?;
        let after = relay.opened(wait).await?;
        if after != self.sent {
            return Err(format!(
                "reopened after sequence {after}, not {} (the last it had)",
                self.sent
            ));
        }
        let again = relay.next_message(wait).await?;
        if again != "kit-h-1" {
            return Err(format!(
                "after the reconnect the unacknowledged message came as {again:?}, not kit-h-1"
            ));
        }
        self.relay = Some(relay);
        self.send(ChatAuthor::Human, "kit-h-1").await?;
        say("kit-h-2").await?;
        let relay = self.relay.as_mut().ok_or("no relay open")?;
        let next = relay.next_message(wait).await?;
        if next != "kit-h-2" {
            return Err(format!(
                "after kit-h-1 was stored the next message was {next:?}, not kit-h-2"
            ));
        }
        self.send(ChatAuthor::Human, "kit-h-2").await?;
        Ok("kit-h-1 sent again with its id after the reconnect, then not again once stored".into())
    }

    async fn ended(&mut self, session: &Session) -> Result<String, String> {
        self.sent += 1;
        let relay = self.relay.as_ref().ok_or("no relay open")?;
        relay
            .entry(ChatEntry {
                kind: ChatEntryKind::Ended as i32,
                author: ChatAuthor::System as i32,
                client_message_id: String::new(),
                end_reason: ChatEndReason::Completed as i32,
                ..entry(&self.handoff_id, self.sent, ChatAuthor::System, "")
            })
            .await?;
        let received = self
            .human_received(self.sent as usize, session.profile.transfer_timeout)
            .await?;
        let expected: Vec<u64> = (1..=self.sent).collect();
        if received != expected {
            return Err(format!("the human received {received:?}, not {expected:?}"));
        }
        // The control service closes its side once ENDED is sent (its
        // sender dropped ends the request stream); the connector then
        // closes its own.
        let mut relay = self.relay.take().ok_or("no relay open")?;
        relay.send = mpsc::channel(1).0;
        // Bounded: a few hints may come before the end.
        for _ in 0..64 {
            match relay.next(session.profile.grace).await {
                Ok(None) => return Ok("ENDED reached the human and the relay closed".into()),
                Ok(Some(ResponseKind::Typing(_) | ResponseKind::Read(_))) => {}
                Ok(Some(other)) => return Err(format!("after ENDED the connector sent {other:?}")),
                Err(problem) => return Err(format!("after ENDED: {problem}")),
            }
        }
        Err("the relay stayed open after ENDED".into())
    }
}

fn outcome(result: Result<String, String>) -> Outcome {
    match result {
        Ok(note) => Outcome::Pass(note),
        Err(problem) => Outcome::Fail(problem),
    }
}

pub async fn run(session: &mut Session) {
    if !session.info.chat {
        session
            .check("chat.unimplemented", async |s| {
                outcome(unimplemented(s).await)
            })
            .await;
        return;
    }
    let Some(human) = session.human.clone() else {
        skip_all(
            session,
            "the connector relays chat, but the runner gave no human side",
        );
        return;
    };
    let Some(queue) = session.profile.chat_queue.clone() else {
        skip_all(session, "no chat_queue in the profile");
        return;
    };
    let mut conversation = match start(session, &queue, human).await {
        Ok(conversation) => conversation,
        Err(problem) => {
            for id in IDS {
                session
                    .check(id, async |_| Outcome::Fail(problem.clone()))
                    .await;
            }
            return;
        }
    };
    session
        .check("chat.opened", async |s| {
            outcome(conversation.opened(s).await)
        })
        .await;
    session
        .check("chat.entries_in_order", async |s| {
            outcome(conversation.in_order(s).await)
        })
        .await;
    session
        .check("chat.resent_by_id_after_reconnect", async |s| {
            outcome(conversation.resent_by_id(s).await)
        })
        .await;
    session
        .check("chat.ended_closes", async |s| {
            outcome(conversation.ended(s).await)
        })
        .await;
    let _ = session.client.cancel(&conversation.handoff_id, 1).await;
    conversation.transfer.finish(session.profile.grace).await;
    session.keep(conversation.transfer.into_observed());
}

fn skip_all(session: &mut Session, why: &str) {
    for id in IDS {
        session
            .report
            .push(id, Outcome::Skip(why.into()), Duration::ZERO);
    }
}

/// Starts a chat transfer to `queue` and waits until it is CONNECTED.
async fn start(
    session: &Session,
    queue: &str,
    human: Arc<dyn ChatHuman>,
) -> Result<Conversation, String> {
    let mode = [TransferMode::Warm, TransferMode::Blind]
        .into_iter()
        .find(|m| session.advertises_mode(*m))
        .ok_or("neither warm nor blind is advertised")?;
    let handoff_id = requests::new_handoff_id();
    let mut envelope = requests::envelope(&handoff_id, &session.info.context_capabilities, None);
    envelope.conversation = Some(pb::Conversation {
        channel: pb::Channel::Chat as i32,
        language: "en-US".into(),
        call: None,
    });
    let target = pb::target::Kind::Queue(pb::QueueTarget {
        name: queue.into(),
        skills: Vec::new(),
    });
    let request = requests::start_request(
        &handoff_id,
        1,
        target,
        mode,
        envelope,
        SystemTime::now() + session.long_deadline(),
    );
    let mut transfer = session
        .client
        .start_observed(request, format!("chat transfer to queue {queue}"))
        .await;
    let connected = transfer
        .wait_for(
            |e| e.kind() == TransferEventKind::Connected,
            session.profile.transfer_timeout,
        )
        .await;
    if !connected {
        let _ = session.client.cancel(&handoff_id, 1).await;
        return Err(format!(
            "the chat transfer to queue {queue} did not reach CONNECTED: {:?}",
            transfer.observed
        ));
    }
    Ok(Conversation {
        handoff_id,
        transfer,
        human,
        relay: None,
        sent: 0,
    })
}

/// A connector without `chat` refuses the relay with UNIMPLEMENTED.
async fn unimplemented(session: &Session) -> Result<String, String> {
    let handoff_id = requests::new_handoff_id();
    let mut relay = match Relay::open(session, &handoff_id, 1).await {
        Err(status) if status.code() == Code::Unimplemented => {
            return Ok("UNIMPLEMENTED at the call".into());
        }
        Err(status) => {
            return Err(format!(
                "answered {:?} ({}), not UNIMPLEMENTED",
                status.code(),
                status.message()
            ));
        }
        Ok(relay) => relay,
    };
    match timeout(CALL_TIMEOUT, relay.receive.message()).await {
        Ok(Err(status)) if status.code() == Code::Unimplemented => {
            Ok("UNIMPLEMENTED as the stream's end".into())
        }
        Ok(Err(status)) => Err(format!(
            "the stream ended with {:?} ({}), not UNIMPLEMENTED",
            status.code(),
            status.message()
        )),
        Ok(Ok(answer)) => Err(format!(
            "a connector without chat answered {answer:?}, not UNIMPLEMENTED"
        )),
        Err(_) => Err("no answer, not UNIMPLEMENTED".into()),
    }
}
