//! Chat handoffs at the agent desktop in real headless Chromium, through
//! the real binaries: the runtime (this test) holds the customer's side of
//! each conversation with ConverseHandoff on `baton-control`; agent ann,
//! signed in to the embedded queue's desktop (`baton-connector-queue`,
//! chat capacity 2), reads and answers in the chat pane of each handoff's
//! tab. An UpdateHandoff while the first chat is offered redraws the open
//! screen pop (no reload); ann holds two chats at once and each message
//! lands in its own conversation; a third chat waits until she ends one;
//! the runtime drops a stream and reopens it from the last sequence it
//! saw, and the page reloads, with no message lost or shown twice (the
//! ids and sequences the runtime saw are the ones the pane shows).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{CreateHandoffRequest, GetHandoffRequest, UpdateHandoffRequest};
use baton_proto::types::v1 as pb;
use baton_proto::types::v1::{ChatAuthor, ChatEntry};
use baton_tests::Service;
use baton_tests::converse::{self, Conversation};
use baton_tests::desk;
use browser::Browser;
use fantoccini::Locator;
use serde::Deserialize;
use tonic::transport::Channel;

mod browser;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);

/// What the customer told the AI while waiting, added by UpdateHandoff.
const LATE_TURN: &str = "The tracking page says delivered, but nothing came";

/// The queue (ann may hold two chats at once) and the control service in
/// front of it.
async fn start(dir: &Path) -> anyhow::Result<(Service, Service)> {
    let capacity = "[[agents]]\nid = \"ann\"\nchat_capacity = 2\n";
    desk::start_queue_and_control(dir, "ann", capacity).await
}

fn chat_request(request_id: &str, summary: &str) -> CreateHandoffRequest {
    let mut request = converse::chat_request(request_id);
    if let Some(context) = request.context.as_mut() {
        context.summary = summary.into();
    }
    request
}

/// The runtime's side of one conversation: its stream, and every entry it
/// saw across reconnects as (sequence, author, id, text).
struct Customer {
    handoff_id: String,
    /// None while disconnected.
    stream: Option<Conversation>,
    seen: Vec<(u64, ChatAuthor, String, String)>,
}

impl Customer {
    async fn open(
        client: &mut HandoffServiceClient<Channel>,
        handoff_id: &str,
    ) -> anyhow::Result<Customer> {
        let (stream, _) = Conversation::open(client, handoff_id, 0).await?;
        Ok(Customer {
            handoff_id: handoff_id.into(),
            stream: Some(stream),
            seen: Vec::new(),
        })
    }

    /// The runtime loses its connection: the stream is dropped.
    fn disconnect(&mut self) {
        self.stream = None;
    }

    /// Opens the conversation again after the last sequence seen.
    async fn reconnect(
        &mut self,
        client: &mut HandoffServiceClient<Channel>,
    ) -> anyhow::Result<()> {
        let last = self.seen.last().map_or(0, |(sequence, ..)| *sequence);
        self.stream = Some(Conversation::open(client, &self.handoff_id, last).await?.0);
        Ok(())
    }

    fn open_stream(&mut self) -> anyhow::Result<&mut Conversation> {
        self.stream.as_mut().context("disconnected")
    }

    async fn say(&mut self, id: &str, text: &str) -> anyhow::Result<()> {
        self.open_stream()?.say(id, text).await
    }

    /// The next entry of the log (hints skipped), remembered in `seen`.
    async fn next_entry(&mut self) -> anyhow::Result<ChatEntry> {
        let entry = self.open_stream()?.next_entry().await?;
        self.seen.push((
            entry.sequence,
            entry.author(),
            entry.client_message_id.clone(),
            entry.text.clone(),
        ));
        Ok(entry)
    }

    /// The customer writes and sees their message come back as the next
    /// entry.
    async fn write(&mut self, id: &str, text: &str) -> anyhow::Result<u64> {
        self.say(id, text).await?;
        let entry = self.next_entry().await?;
        assert_eq!(
            (
                entry.author(),
                entry.client_message_id.as_str(),
                entry.text.as_str()
            ),
            (ChatAuthor::Customer, id, text)
        );
        Ok(entry.sequence)
    }

    /// The messages seen, as the pane shows them: (sequence, id, text).
    fn log(&self) -> Vec<PaneEntry> {
        self.seen
            .iter()
            .map(|(sequence, _, id, text)| PaneEntry {
                sequence: *sequence,
                id: id.clone(),
                text: text.clone(),
            })
            .collect()
    }
}

/// One entry of the chat pane on the page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct PaneEntry {
    sequence: u64,
    id: String,
    text: String,
}

/// The entries of the chat pane shown now (the selected tab's), read from
/// the page; None while no pane of `handoff_id` is on the screen.
async fn pane(browser: &Browser, handoff_id: &str) -> anyhow::Result<Option<Vec<PaneEntry>>> {
    let entries = browser
        .client
        .execute(
            r#"const slot = document.getElementById("chat-slot");
               if (!slot || slot.dataset.handoff !== arguments[0] || !slot.querySelector(".chat-log")) return null;
               return Array.from(slot.querySelectorAll(".chat-log li.chat-entry"), (li) => ({
                 sequence: Number(li.dataset.sequence),
                 id: li.dataset.id,
                 text: li.querySelector(".chat-text").textContent,
               }));"#,
            vec![serde_json::Value::from(handoff_id)],
        )
        .await?;
    Ok(serde_json::from_value(entries)?)
}

/// Waits until the pane of `handoff_id` shows exactly `wanted`.
async fn pane_shows(
    browser: &Browser,
    handoff_id: &str,
    wanted: &[PaneEntry],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = pane(browser, handoff_id).await?;
        if shown.as_deref() == Some(wanted) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the pane of {handoff_id} shows {shown:?}, not {wanted:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Selects the tab of `handoff_id`.
async fn open_tab(browser: &Browser, handoff_id: &str) -> anyhow::Result<()> {
    browser
        .click(&format!(
            "button.conversation-tab[data-handoff='{handoff_id}']"
        ))
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("#pop[data-handoff='{handoff_id}']")))
        .await?;
    Ok(())
}

/// Ann types `text` into the shown chat pane of `handoff_id` and sends it.
async fn type_and_send(browser: &Browser, handoff_id: &str, text: &str) -> anyhow::Result<()> {
    let input = format!("#chat-slot[data-handoff='{handoff_id}'] .chat-input");
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&input))
        .await?;
    browser.fill(&input, text).await?;
    browser
        .click(&format!(
            "#chat-slot[data-handoff='{handoff_id}'] .chat-send"
        ))
        .await
}

/// The agent's message as the runtime receives it: its id is the page's.
async fn agent_message(customer: &mut Customer, text: &str) -> anyhow::Result<u64> {
    let entry = customer.next_entry().await?;
    assert_eq!(
        (entry.author(), entry.text.as_str()),
        (ChatAuthor::Human, text)
    );
    assert!(
        entry.client_message_id.starts_with("desk-"),
        "the pane names its messages: {entry:?}"
    );
    Ok(entry.sequence)
}

fn assert_in_order_once(customer: &Customer) {
    let sequences: Vec<u64> = customer.seen.iter().map(|(s, ..)| *s).collect();
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected, "every entry once, in order");
    let mut ids: Vec<&str> = customer
        .seen
        .iter()
        .map(|(_, _, id, _)| id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), customer.seen.len(), "no id twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_holds_two_chats_in_the_browser_across_reconnects_and_a_reload()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (queue, control) = start(dir.path()).await?;
    Browser::run(
        dir.path(),
        "chat-desktop-failure.png",
        &[],
        async |browser| chats(&queue, &control, browser).await,
    )
    .await
}

async fn chats(queue: &Service, control: &Service, browser: &Browser) -> anyhow::Result<()> {
    let mut client = HandoffServiceClient::connect(control.endpoint("grpc")).await?;
    browser
        .sign_in(&desk::desktop_base(queue), "ann", "ann-pw")
        .await?;

    // The first chat is offered; while the offer is open the runtime adds
    // what the customer said meanwhile, and the open pop is drawn again
    // with it (the page is not reloaded: the mark set on it stays).
    let parcel = baton_tests::create_handoff(
        &mut client,
        chat_request("chat-desktop-parcel", "Parcel never arrived"),
    )
    .await;
    browser
        .wait_text("#pop-summary", "Parcel never arrived")
        .await?;
    browser
        .client
        .execute("window.notReloaded = true;", vec![])
        .await?;
    let version = client
        .get_handoff(GetHandoffRequest {
            handoff_id: parcel.clone(),
        })
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?
        .context_version;
    let updated = client
        .update_handoff(UpdateHandoffRequest {
            handoff_id: parcel.clone(),
            request_id: "chat-desktop-update".into(),
            expected_context_version: version,
            turns: vec![pb::Turn {
                speaker: pb::Speaker::Customer as i32,
                text: LATE_TURN.into(),
                at: None,
            }],
            entities: vec![],
            notes: String::new(),
        })
        .await?
        .into_inner();
    assert!(updated.applied);
    browser.wait_text("#transcript", LATE_TURN).await?;
    let same_page = browser
        .client
        .execute("return window.notReloaded === true;", vec![])
        .await?;
    assert_eq!(same_page, serde_json::Value::Bool(true), "redrawn in place");

    browser.click("#accept").await?;
    browser.wait_text("#pop-title", "Connected").await?;

    // A second chat while she holds the first (capacity 2): offered to
    // her in a tab of its own, without taking her off the first.
    let refund = baton_tests::create_handoff(
        &mut client,
        chat_request("chat-desktop-refund", "Refund not received"),
    )
    .await;
    browser
        .wait_text(
            &format!("button.conversation-tab[data-handoff='{refund}']"),
            "Offer",
        )
        .await?;
    let shown = browser.client.find(Locator::Css("#pop")).await?;
    assert_eq!(
        shown.attr("data-handoff").await?.as_deref(),
        Some(parcel.as_str())
    );
    open_tab(browser, &refund).await?;
    browser.click("#accept").await?;
    browser.wait_text("#pop-title", "Connected").await?;
    browser.wait_text("#my-chats", "2 of 2").await?;

    // Each customer writes; each message lands in its own conversation.
    let mut parcel_customer = Customer::open(&mut client, &parcel).await?;
    let mut refund_customer = Customer::open(&mut client, &refund).await?;
    parcel_customer.write("p-1", "Where is my parcel?").await?;
    refund_customer
        .write("r-1", "I returned the shoes two weeks ago")
        .await?;
    pane_shows(browser, &refund, &refund_customer.log()).await?;
    // The parcel chat, not on the screen, counts what came meanwhile.
    browser
        .wait_text(
            &format!("button.conversation-tab[data-handoff='{parcel}'] .unread"),
            "1",
        )
        .await?;

    type_and_send(browser, &refund, "The refund left today").await?;
    agent_message(&mut refund_customer, "The refund left today").await?;
    pane_shows(browser, &refund, &refund_customer.log()).await?;

    open_tab(browser, &parcel).await?;
    pane_shows(browser, &parcel, &parcel_customer.log()).await?;
    type_and_send(browser, &parcel, "Checking with the courier").await?;
    agent_message(&mut parcel_customer, "Checking with the courier").await?;
    pane_shows(browser, &parcel, &parcel_customer.log()).await?;

    // The runtime loses the parcel stream; ann writes meanwhile. Reopened
    // from the last sequence it saw, the runtime gets exactly that message;
    // a message of the customer sent twice (a retry) is stored once.
    parcel_customer.disconnect();
    type_and_send(browser, &parcel, "The courier will call you today").await?;
    parcel_customer.reconnect(&mut client).await?;
    agent_message(&mut parcel_customer, "The courier will call you today").await?;
    parcel_customer.say("p-2", "Thanks, I'll wait").await?;
    parcel_customer.write("p-2", "Thanks, I'll wait").await?;
    parcel_customer.write("p-3", "Around noon?").await?;
    pane_shows(browser, &parcel, &parcel_customer.log()).await?;

    // The page reloads while the customer writes: the pane comes back with
    // the whole conversation, once.
    browser.client.refresh().await?;
    parcel_customer.write("p-4", "Still there?").await?;
    open_tab(browser, &parcel).await?;
    pane_shows(browser, &parcel, &parcel_customer.log()).await?;
    open_tab(browser, &refund).await?;
    pane_shows(browser, &refund, &refund_customer.log()).await?;
    // And the refund runtime reconnects from what it saw; ann's answer
    // after the reload reaches it once.
    refund_customer.reconnect(&mut client).await?;
    type_and_send(browser, &refund, "Anything else?").await?;
    agent_message(&mut refund_customer, "Anything else?").await?;
    pane_shows(browser, &refund, &refund_customer.log()).await?;

    assert_in_order_once(&parcel_customer);
    assert_in_order_once(&refund_customer);
    let parcel_ids: Vec<&str> = parcel_customer
        .seen
        .iter()
        .map(|(_, _, id, _)| id.as_str())
        .collect();
    assert!(
        refund_customer
            .seen
            .iter()
            .all(|(_, _, id, _)| !parcel_ids.contains(&id.as_str())),
        "no message crossed conversations"
    );
    assert_eq!(
        parcel_customer.seen.len(),
        6,
        "p-1, two answers, p-2, p-3, p-4, and nothing twice: {:?}",
        parcel_customer.seen
    );

    // A third chat waits while she holds two; ending one gives her its
    // slot.
    let third = baton_tests::create_handoff(
        &mut client,
        chat_request("chat-desktop-third", "Wrong size delivered"),
    )
    .await;
    browser.wait_text("#waiting", "1").await?;
    let third_tab = format!("button.conversation-tab[data-handoff='{third}']");
    assert!(
        browser
            .client
            .find_all(Locator::Css(&third_tab))
            .await?
            .is_empty(),
        "not offered beyond her capacity"
    );
    open_tab(browser, &parcel).await?;
    browser.click("#finish").await?;
    browser.wait_text(&third_tab, "Offer").await?;
    Ok(())
}
