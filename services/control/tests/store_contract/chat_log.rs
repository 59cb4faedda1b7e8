//! The chat log's contract: gapless sequences in the order stored, a
//! writer's message id stored once, one ENDED entry after which nothing is
//! stored, reads after any sequence, and no tenant reading another's.

use std::sync::Arc;

use baton_control::domain::chat::{
    ChatAppend, ChatAttachment, ChatAuthor, ChatDraft, ChatEndReason, ChatEntry,
};
use baton_control::store::HandoffStore;

use crate::{Backend, unique};

contract_suite!(
    messages_get_gapless_sequences_and_a_resent_id_is_stored_once,
    the_end_is_stored_once_and_closes_the_log,
    another_tenant_reads_nothing_of_a_conversation,
);

fn draft(id: &str, text: &str) -> ChatDraft {
    ChatDraft {
        message_id: id.into(),
        text: text.into(),
        attachments: Vec::new(),
        author_name: String::new(),
    }
}

/// A new conversation of a new tenant in a backend's store.
struct Conversation {
    store: Arc<dyn HandoffStore>,
    tenant: String,
    handoff: String,
}

impl Conversation {
    async fn open(backend: &impl Backend) -> Self {
        Self {
            store: backend.open().await,
            tenant: unique("chat"),
            handoff: unique("handoff"),
        }
    }

    async fn append(&self, author: ChatAuthor, draft: ChatDraft) -> ChatAppend {
        self.store
            .append_chat(&self.tenant, &self.handoff, author, draft)
            .await
            .expect("append")
    }

    async fn end(&self, reason: ChatEndReason) -> ChatEntry {
        self.store
            .end_chat(&self.tenant, &self.handoff, reason)
            .await
            .unwrap_or_else(|e| panic!("end {reason:?}: {e}"))
    }

    /// What a reader finds after `after`, at most `limit` entries.
    async fn after(&self, after: u64, limit: usize) -> Vec<ChatEntry> {
        self.store
            .chat_after(&self.tenant, &self.handoff, after, limit)
            .await
            .expect("read")
    }
}

async fn messages_get_gapless_sequences_and_a_resent_id_is_stored_once(backend: &impl Backend) {
    let chat = Conversation::open(backend).await;
    let mut first = draft("c-1", "hello");
    first.attachments.push(ChatAttachment {
        url: "https://files.example/photo.png".into(),
        media_type: "image/png".into(),
        size_bytes: 2048,
        name: "photo.png".into(),
    });
    let ChatAppend::Stored(stored) = chat.append(ChatAuthor::Customer, first.clone()).await else {
        panic!("the first message is stored");
    };
    assert_eq!(stored.sequence, 1);
    assert_eq!(stored.attachments, first.attachments);
    let mut reply = draft("h-1", "how can I help?");
    reply.author_name = "Ada".into();
    let reply = chat.append(ChatAuthor::Human, reply).await;
    assert_eq!(reply.entry().sequence, 2);
    // The same id from another author is another message.
    let same_id = chat.append(ChatAuthor::Human, draft("c-1", "x")).await;
    assert!(matches!(same_id, ChatAppend::Stored(ref e) if e.sequence == 3));

    // Re-sent after a reconnect: the entry stored then, nothing new.
    let again = chat.append(ChatAuthor::Customer, first).await;
    assert_eq!(again, ChatAppend::AlreadyStored(stored.clone()));

    let all = chat.after(0, 100).await;
    let sequences: Vec<u64> = all.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3]);
    let last = chat
        .store
        .last_chat_sequence(&chat.tenant, &chat.handoff)
        .await;
    assert_eq!(last.expect("read"), 3);
    let none = chat
        .store
        .last_chat_sequence(&chat.tenant, "no-such-handoff")
        .await;
    assert_eq!(none.expect("read"), 0, "an empty conversation");
    assert_eq!(all[0], stored);
    assert_eq!(all[1].author, ChatAuthor::Human);
    assert_eq!(all[1].author_name, "Ada");
    let after = chat.after(1, 1).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].sequence, 2);
}

async fn the_end_is_stored_once_and_closes_the_log(backend: &impl Backend) {
    let chat = Conversation::open(backend).await;
    chat.append(ChatAuthor::Customer, draft("c-1", "hi")).await;
    let ended = chat.end(ChatEndReason::Completed).await;
    assert_eq!(ended.sequence, 2);
    assert_eq!(ended.author, ChatAuthor::System);
    assert_eq!(ended.ended, Some(ChatEndReason::Completed));
    assert!(!ended.text.is_empty(), "the final message says why");
    // Ending again keeps the first reason.
    let again = chat.end(ChatEndReason::Cancelled).await;
    assert_eq!(again, ended);
    // Nothing is stored after the end, and the writer learns why.
    let late = chat.append(ChatAuthor::Human, draft("h-9", "late")).await;
    assert_eq!(late, ChatAppend::Ended(ended.clone()));
    let all = chat.after(0, 100).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all.last(), Some(&ended));
}

async fn another_tenant_reads_nothing_of_a_conversation(backend: &impl Backend) {
    let chat = Conversation::open(backend).await;
    chat.append(ChatAuthor::Customer, draft("c-1", "secret"))
        .await;
    let other = unique("other");
    let seen = chat
        .store
        .chat_after(&other, &chat.handoff, 0, 100)
        .await
        .expect("read");
    assert!(seen.is_empty());
}
