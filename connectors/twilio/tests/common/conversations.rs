//! The contract server's Conversations and TaskRouter tasks, as Twilio
//! publishes them (conversations.twilio.com/v1, taskrouter.twilio.com/v1):
//! Basic auth, form-encoded parameters, only the documented parameter
//! names, JSON attributes, SIDs `CH`/`IM`/`WT` + 32 hex digits, 404
//! (20404) for an unknown conversation or task, 409 (50353) for a unique
//! name taken, and the post-event webhooks signed with
//! `X-Twilio-Signature` as Twilio signs them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

pub const WORKSPACE_SID: &str = "WS00112233445566778899aabbccddeeff";
const CHAT_SERVICE_SID: &str = "IS00000000000000000000000000000000";
/// The author Flex gives the agent's messages.
pub const AGENT_IDENTITY: &str = "alice@flex.example";

/// One Conversation and its messages.
#[derive(Debug, Clone)]
pub struct StoredConversation {
    pub sid: String,
    pub unique_name: Option<String>,
    pub attributes: Value,
    pub state: String,
    pub messages: Vec<Value>,
}

/// One TaskRouter task and every Attributes it was given, in order.
#[derive(Debug, Clone)]
pub struct StoredTask {
    pub sid: String,
    pub workflow_sid: String,
    pub task_channel: String,
    pub priority: u32,
    pub attributes: Vec<Value>,
    pub assignment_status: String,
}

fn sid(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:032x}")
}

fn not_found(resource: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {resource} was not found"),
    )
}

/// Twilio's answer to a request it refuses (boxed: a response is large).
type Refused = Box<Response>;

fn refused(status: StatusCode, code: u32, message: &str) -> Refused {
    Box::new(error(status, code, message))
}

/// The form of an authenticated, form-encoded request whose parameters
/// are all among `allowed`, or Twilio's answer to it.
fn checked_form(
    headers: &HeaderMap,
    body: &[u8],
    allowed: &[&str],
) -> Result<Vec<(String, String)>, Refused> {
    if !authenticated(headers) {
        return Err(refused(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            20001,
            "Parameters must be form-encoded (application/x-www-form-urlencoded)",
        ));
    }
    let params = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| refused(StatusCode::BAD_REQUEST, 20001, "Invalid form encoding"))?;
    if let Some((name, _)) = params.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            20001,
            &format!("Invalid parameter: {name}"),
        ));
    }
    Ok(params)
}

fn value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `Attributes`, which must be a JSON object.
fn attributes(params: &[(String, String)]) -> Result<Option<Value>, Refused> {
    match value(params, "Attributes") {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => Ok(Some(object)),
            _ => Err(refused(
                StatusCode::BAD_REQUEST,
                20001,
                "Attributes must be a valid JSON object",
            )),
        },
    }
}

fn conversation_json(conversation: &StoredConversation) -> Value {
    json!({
        "sid": conversation.sid,
        "account_sid": ACCOUNT_SID,
        "chat_service_sid": CHAT_SERVICE_SID,
        "unique_name": conversation.unique_name,
        "attributes": conversation.attributes.to_string(),
        "state": conversation.state,
        "url": format!("https://conversations.twilio.com/v1/Conversations/{}", conversation.sid),
    })
}

const CONVERSATION_PARAMS: &[&str] = &[
    "FriendlyName",
    "UniqueName",
    "DateCreated",
    "DateUpdated",
    "MessagingServiceSid",
    "Attributes",
    "State",
    "Timers.Inactive",
    "Timers.Closed",
    "Bindings.Email.Address",
    "Bindings.Email.Name",
];

/// `POST /v1/Conversations`.
pub async fn create_conversation(
    State(twilio): State<Arc<Twilio>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match checked_form(&headers, &body, CONVERSATION_PARAMS) {
        Ok(params) => params,
        Err(refusal) => return *refusal,
    };
    let attributes = match attributes(&params) {
        Ok(attributes) => attributes.unwrap_or_else(|| json!({})),
        Err(refusal) => return *refusal,
    };
    let state = value(&params, "State").unwrap_or("active");
    if !matches!(state, "active" | "inactive" | "closed") {
        return error(StatusCode::BAD_REQUEST, 20001, "Invalid State");
    }
    let unique_name = value(&params, "UniqueName").map(str::to_owned);
    let mut conversations = twilio.conversations.lock().expect("lock");
    if unique_name.is_some() && conversations.iter().any(|c| c.unique_name == unique_name) {
        return error(
            StatusCode::CONFLICT,
            50353,
            "Conversation with provided unique name already exists",
        );
    }
    let conversation = StoredConversation {
        sid: sid("CH", conversations.len() + 1),
        unique_name,
        attributes,
        state: state.to_owned(),
        messages: Vec::new(),
    };
    let answer = conversation_json(&conversation);
    conversations.push(conversation);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// The index of a conversation by SID or unique name.
fn find(conversations: &[StoredConversation], id: &str) -> Option<usize> {
    conversations
        .iter()
        .position(|c| c.sid == id || c.unique_name.as_deref() == Some(id))
}

/// `GET /v1/Conversations/{sid}`.
pub async fn fetch_conversation(
    State(twilio): State<Arc<Twilio>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authenticated(&headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let conversations = twilio.conversations.lock().expect("lock");
    match find(&conversations, &id) {
        Some(i) => axum::Json(conversation_json(&conversations[i])).into_response(),
        None => not_found(&format!("/v1/Conversations/{id}")),
    }
}

/// `POST /v1/Conversations/{sid}`: an update, e.g. `State=closed`.
pub async fn update_conversation(
    State(twilio): State<Arc<Twilio>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match checked_form(&headers, &body, CONVERSATION_PARAMS) {
        Ok(params) => params,
        Err(refusal) => return *refusal,
    };
    if let Err(refusal) = attributes(&params) {
        return *refusal;
    }
    let mut conversations = twilio.conversations.lock().expect("lock");
    let Some(i) = find(&conversations, &id) else {
        return not_found(&format!("/v1/Conversations/{id}"));
    };
    if let Some(state) = value(&params, "State") {
        if !matches!(state, "active" | "inactive" | "closed") {
            return error(StatusCode::BAD_REQUEST, 20001, "Invalid State");
        }
        conversations[i].state = state.to_owned();
    }
    axum::Json(conversation_json(&conversations[i])).into_response()
}

/// `POST /v1/Conversations/{sid}/Messages`. REST-created messages fire
/// the post-event webhook only with `X-Twilio-Webhook-Enabled: true`.
pub async fn create_message(
    State(twilio): State<Arc<Twilio>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match checked_form(
        &headers,
        &body,
        &[
            "Author",
            "Body",
            "DateCreated",
            "DateUpdated",
            "Attributes",
            "MediaSid",
            "ContentSid",
            "ContentVariables",
            "Subject",
        ],
    ) {
        Ok(params) => params,
        Err(refusal) => return *refusal,
    };
    let attributes = match attributes(&params) {
        Ok(attributes) => attributes.unwrap_or_else(|| json!({})),
        Err(refusal) => return *refusal,
    };
    let body = value(&params, "Body").unwrap_or_default();
    if body.is_empty()
        && value(&params, "MediaSid").is_none()
        && value(&params, "ContentSid").is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            "One of Body, MediaSid or ContentSid is required",
        );
    }
    if body.chars().count() > 1600 {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            "Body must be 1600 characters or fewer",
        );
    }
    let message = {
        let mut conversations = twilio.conversations.lock().expect("lock");
        let Some(i) = find(&conversations, &id) else {
            return not_found(&format!("/v1/Conversations/{id}/Messages"));
        };
        let conversation = &mut conversations[i];
        let index = conversation.messages.len();
        let total: usize = twilio
            .message_count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let message = json!({
            "sid": sid("IM", total + 1),
            "account_sid": ACCOUNT_SID,
            "conversation_sid": conversation.sid,
            "index": index,
            "author": value(&params, "Author").unwrap_or("system"),
            "body": body,
            "attributes": attributes.to_string(),
            "media": null,
        });
        conversation.messages.push(message.clone());
        message
    };
    let webhook = headers
        .get("x-twilio-webhook-enabled")
        .and_then(|v| v.to_str().ok())
        == Some("true");
    if webhook {
        message_added(&twilio, &message, "API").await;
    }
    (StatusCode::CREATED, axum::Json(message)).into_response()
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageListing {
    order: Option<String>,
    page_size: Option<usize>,
    page: Option<usize>,
}

/// `GET /v1/Conversations/{sid}/Messages?Order=&PageSize=&Page=`.
pub async fn list_messages(
    State(twilio): State<Arc<Twilio>>,
    Path(id): Path<String>,
    Query(listing): Query<MessageListing>,
    headers: HeaderMap,
) -> Response {
    if !authenticated(&headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let page_size = listing.page_size.unwrap_or(50);
    if !(1..=1000).contains(&page_size) {
        return error(StatusCode::BAD_REQUEST, 20001, "Invalid PageSize");
    }
    let order = listing.order.as_deref().unwrap_or("asc");
    if !matches!(order, "asc" | "desc") {
        return error(StatusCode::BAD_REQUEST, 20001, "Invalid Order");
    }
    let conversations = twilio.conversations.lock().expect("lock");
    let Some(i) = find(&conversations, &id) else {
        return not_found(&format!("/v1/Conversations/{id}/Messages"));
    };
    let mut messages = conversations[i].messages.clone();
    if order == "desc" {
        messages.reverse();
    }
    let page = listing.page.unwrap_or(0);
    let this: Vec<Value> = messages
        .iter()
        .skip(page * page_size)
        .take(page_size)
        .cloned()
        .collect();
    let base = format!(
        "http://{}/v1/Conversations/{}/Messages",
        twilio.addr.lock().expect("lock").expect("serving"),
        conversations[i].sid
    );
    let next = ((page + 1) * page_size < messages.len()).then(|| {
        format!(
            "{base}?Order={order}&PageSize={page_size}&Page={}",
            page + 1
        )
    });
    axum::Json(json!({
        "messages": this,
        "meta": {
            "page": page,
            "page_size": page_size,
            "first_page_url": format!("{base}?Order={order}&PageSize={page_size}&Page=0"),
            "previous_page_url": null,
            "url": format!("{base}?Order={order}&PageSize={page_size}&Page={page}"),
            "next_page_url": next,
            "key": "messages",
        }
    }))
    .into_response()
}

/// The post-event webhook `onMessageAdded` for `message`, signed.
async fn message_added(twilio: &Twilio, message: &Value, source: &str) {
    let Some(url) = twilio
        .conversations_webhook_url
        .lock()
        .expect("lock")
        .clone()
    else {
        return;
    };
    let text = |name: &str| message[name].as_str().unwrap_or_default().to_owned();
    let index = message["index"].to_string();
    callback(
        twilio,
        &url,
        vec![
            ("AccountSid".into(), ACCOUNT_SID.into()),
            ("ChatServiceSid".into(), CHAT_SERVICE_SID.into()),
            ("EventType".into(), "onMessageAdded".into()),
            ("ConversationSid".into(), text("conversation_sid")),
            ("MessageSid".into(), text("sid")),
            ("Index".into(), index),
            ("Author".into(), text("author")),
            ("Body".into(), text("body")),
            ("Attributes".into(), text("attributes")),
            ("Source".into(), source.into()),
            ("DateCreated".into(), "2026-12-06T01:00:00Z".into()),
        ],
    )
    .await;
}

/// The agent writes in the Conversation (from Flex): stored, then the
/// webhook. Its Message SID.
pub async fn agent_says(twilio: &Twilio, conversation_sid: &str, body: &str) -> String {
    let message = {
        let mut conversations = twilio.conversations.lock().expect("lock");
        let i = find(&conversations, conversation_sid).expect("a conversation");
        let conversation = &mut conversations[i];
        let total = twilio
            .message_count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let message = json!({
            "sid": sid("IM", total + 1),
            "account_sid": ACCOUNT_SID,
            "conversation_sid": conversation.sid,
            "index": conversation.messages.len(),
            "author": AGENT_IDENTITY,
            "body": body,
            "attributes": "{}",
            "media": null,
        });
        conversation.messages.push(message.clone());
        message
    };
    message_added(twilio, &message, "SDK").await;
    message["sid"].as_str().expect("sid").to_owned()
}

/// The agent closes the Conversation (Flex's wrap-up): the state, then
/// the webhook.
pub async fn agent_closes(twilio: &Twilio, conversation_sid: &str) {
    {
        let mut conversations = twilio.conversations.lock().expect("lock");
        let i = find(&conversations, conversation_sid).expect("a conversation");
        conversations[i].state = "closed".into();
    }
    let Some(url) = twilio
        .conversations_webhook_url
        .lock()
        .expect("lock")
        .clone()
    else {
        return;
    };
    callback(
        twilio,
        &url,
        form(&[
            ("AccountSid", ACCOUNT_SID),
            ("ChatServiceSid", CHAT_SERVICE_SID),
            ("EventType", "onConversationStateUpdated"),
            ("ConversationSid", conversation_sid),
            ("StateFrom", "active"),
            ("StateTo", "closed"),
            ("Reason", "API"),
            ("Source", "SDK"),
            ("DateUpdated", "2026-12-06T01:05:00Z"),
        ]),
    )
    .await;
}

fn task_json(task: &StoredTask) -> Value {
    json!({
        "sid": task.sid,
        "account_sid": ACCOUNT_SID,
        "workspace_sid": WORKSPACE_SID,
        "workflow_sid": task.workflow_sid,
        "attributes": task.attributes.last().map(Value::to_string),
        "assignment_status": task.assignment_status,
        "priority": task.priority,
        "task_channel_unique_name": task.task_channel,
    })
}

fn check_workspace(workspace: &str) -> Result<(), Refused> {
    if workspace == WORKSPACE_SID {
        Ok(())
    } else {
        Err(Box::new(not_found(&format!("/v1/Workspaces/{workspace}"))))
    }
}

/// `POST /v1/Workspaces/{ws}/Tasks`; a task of a queue whose outcome is
/// `Bridged` is reserved for an agent who accepts it (the workspace's
/// events).
pub async fn create_task(
    State(twilio): State<Arc<Twilio>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match checked_form(
        &headers,
        &body,
        &[
            "Timeout",
            "Priority",
            "TaskChannel",
            "WorkflowSid",
            "Attributes",
            "VirtualStartTime",
            "RoutingTarget",
            "IgnoreCapacity",
            "TaskQueueSid",
        ],
    ) {
        Ok(params) => params,
        Err(refusal) => return *refusal,
    };
    if let Err(refusal) = check_workspace(&workspace) {
        return *refusal;
    }
    let attributes = match attributes(&params) {
        Ok(attributes) => attributes.unwrap_or_else(|| json!({})),
        Err(refusal) => return *refusal,
    };
    let Some(workflow_sid) = value(&params, "WorkflowSid") else {
        return error(StatusCode::BAD_REQUEST, 20001, "WorkflowSid is required");
    };
    if workflow_sid != WORKFLOW_SID {
        return not_found(&format!(
            "/v1/Workspaces/{workspace}/Workflows/{workflow_sid}"
        ));
    }
    let priority = match value(&params, "Priority").map(str::parse::<u32>) {
        None => 0,
        Some(Ok(p)) if p <= i32::MAX as u32 => p,
        Some(_) => return error(StatusCode::BAD_REQUEST, 20001, "Invalid Priority"),
    };
    let task_channel = value(&params, "TaskChannel").unwrap_or("default");
    if !matches!(
        task_channel,
        "default" | "voice" | "chat" | "sms" | "video" | "email"
    ) {
        return error(StatusCode::BAD_REQUEST, 20001, "Invalid TaskChannel");
    }
    let task = {
        let mut tasks = twilio.tasks.lock().expect("lock");
        let task = StoredTask {
            sid: sid("WT", tasks.len() + 1),
            workflow_sid: workflow_sid.to_owned(),
            task_channel: task_channel.to_owned(),
            priority,
            attributes: vec![attributes.clone()],
            assignment_status: "pending".into(),
        };
        tasks.push(task.clone());
        task
    };
    let queue = attributes["queue"].as_str().unwrap_or_default().to_owned();
    if twilio.outcome_of(&queue, Outcome::Silent) == Outcome::Bridged {
        tokio::spawn(reserve_and_accept(
            twilio.clone(),
            task.sid.clone(),
            attributes.to_string(),
        ));
    }
    (StatusCode::CREATED, axum::Json(task_json(&task))).into_response()
}

/// The task TaskRouter creates for an `<Enqueue>`d call: its SID.
pub fn enqueued_task(
    twilio: &Twilio,
    workflow_sid: &str,
    priority: u32,
    attributes: &Value,
) -> String {
    let mut tasks = twilio.tasks.lock().expect("lock");
    let task_sid = sid("WT", tasks.len() + 1);
    tasks.push(StoredTask {
        sid: task_sid.clone(),
        workflow_sid: workflow_sid.to_owned(),
        task_channel: "voice".into(),
        priority,
        attributes: vec![attributes.clone()],
        assignment_status: "assigned".into(),
    });
    task_sid
}

/// An agent is offered the task and accepts it: the workspace's events.
pub async fn reserve_and_accept(twilio: Arc<Twilio>, task_sid: String, task_attributes: String) {
    let events_url = twilio.event_callback_url.lock().expect("lock").clone();
    let Some(url) = events_url else {
        return;
    };
    for event in ["reservation.created", "reservation.accepted"] {
        callback(
            &twilio,
            &url,
            form(&[
                ("AccountSid", ACCOUNT_SID),
                ("WorkspaceSid", WORKSPACE_SID),
                ("EventType", event),
                ("ResourceType", "reservation"),
                ("TaskSid", &task_sid),
                ("ReservationSid", "WR00000000000000000000000000000000"),
                ("TaskAttributes", &task_attributes),
                ("Timestamp", "1700000000"),
            ]),
        )
        .await;
    }
}

/// `POST /v1/Workspaces/{ws}/Tasks/{sid}`: new attributes, or the task
/// cancelled or completed (with a `Reason`).
pub async fn update_task(
    State(twilio): State<Arc<Twilio>>,
    Path((workspace, task_sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match checked_form(
        &headers,
        &body,
        &[
            "Attributes",
            "AssignmentStatus",
            "Reason",
            "Priority",
            "TaskChannel",
            "VirtualStartTime",
        ],
    ) {
        Ok(params) => params,
        Err(refusal) => return *refusal,
    };
    if let Err(refusal) = check_workspace(&workspace) {
        return *refusal;
    }
    let attributes = match attributes(&params) {
        Ok(attributes) => attributes,
        Err(refusal) => return *refusal,
    };
    let status = value(&params, "AssignmentStatus");
    if let Some(status) = status {
        if !matches!(
            status,
            "pending" | "reserved" | "assigned" | "canceled" | "completed" | "wrapping"
        ) {
            return error(StatusCode::BAD_REQUEST, 20001, "Invalid AssignmentStatus");
        }
        if matches!(status, "canceled" | "completed") && value(&params, "Reason").is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                20001,
                "Reason is required to cancel or complete a task",
            );
        }
    }
    let mut tasks = twilio.tasks.lock().expect("lock");
    let Some(task) = tasks.iter_mut().find(|t| t.sid == task_sid) else {
        return not_found(&format!("/v1/Workspaces/{workspace}/Tasks/{task_sid}"));
    };
    if let Some(attributes) = attributes {
        task.attributes.push(attributes);
    }
    if let Some(status) = status {
        task.assignment_status = status.to_owned();
    }
    axum::Json(task_json(task)).into_response()
}

impl Twilio {
    pub fn conversation(&self, n: usize) -> Option<StoredConversation> {
        self.conversations.lock().expect("lock").get(n).cloned()
    }

    pub fn tasks(&self) -> Vec<StoredTask> {
        self.tasks.lock().expect("lock").clone()
    }

    /// The messages of the first conversation once there are `count`.
    pub async fn messages_at_least(&self, count: usize) -> Vec<Value> {
        testing::at_least(count, "conversation messages", || {
            self.conversation(0).map(|c| c.messages).unwrap_or_default()
        })
        .await
    }
}

/// A chat handoff's first attempt to queue `billing`.
pub fn chat_request(handoff_id: &str) -> StartTransferRequest {
    let mut request = request(handoff_id, "", queue("billing"));
    if let Some(envelope) = request.envelope.as_mut() {
        envelope.conversation = Some(baton_proto::types::v1::Conversation {
            channel: baton_proto::types::v1::Channel::Chat as i32,
            call: None,
            language: "en-US".into(),
        });
    }
    request
}

/// A Twilio whose `billing` agent accepts chat tasks, and the connector
/// (gRPC, callbacks), with the workspace's and Conversations' webhooks set
/// to it.
pub async fn chat_setup() -> (Arc<Twilio>, SocketAddr, SocketAddr) {
    let twilio = twilio(&[], &[("billing", Outcome::Bridged)], None);
    let api = start_twilio(twilio.clone()).await;
    let (grpc, callbacks) = start_connector_with_callbacks(config(api)).await;
    *twilio.event_callback_url.lock().expect("lock") =
        Some(format!("http://{callbacks}/v1/taskrouter/events"));
    *twilio.conversations_webhook_url.lock().expect("lock") =
        Some(format!("http://{callbacks}/v1/conversations/events"));
    (twilio, grpc, callbacks)
}

/// Reads a transfer's events up to `kind` (at most 10).
pub async fn until(
    events: &mut tonic::Streaming<StartTransferResponse>,
    kind: baton_proto::connector::v1::TransferEventKind,
) {
    for _ in 0..10 {
        if testing::next_event(events).await.kind() == kind {
            return;
        }
    }
    panic!("no {kind:?} within 10 events");
}
