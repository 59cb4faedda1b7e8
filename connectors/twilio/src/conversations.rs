//! The Conversations and TaskRouter calls of chat transfers and context
//! updates: a Conversation per chat transfer (`CH…`), the customer's
//! messages posted to it (`IM…`), and a TaskRouter task (`WT…`) in the
//! configured workspace that offers it to a Flex agent, whose attributes a
//! context update replaces. Authenticated and retried as the call updates
//! are ([`CallsApi::request`]).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{CallsApi, UpdateError};
use crate::config::TwilioConfig;

/// The most pages of a conversation's messages read when it is resumed
/// (100 messages each): a chat handoff's conversation is far shorter.
const MAX_MESSAGE_PAGES: usize = 20;

/// One message of a Conversation, as listed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Message {
    pub sid: String,
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// The message's attributes, a JSON object as a string.
    #[serde(default)]
    pub attributes: Option<String>,
    #[serde(default)]
    pub media: Option<Value>,
}

impl Message {
    /// The sequence and part of a customer's message this connector posted
    /// (its attributes name them), `None` for the others'.
    pub fn posted_part(&self) -> Option<(u64, u64)> {
        let attributes: Value = serde_json::from_str(self.attributes.as_deref()?).ok()?;
        Some((
            attributes["baton_sequence"].as_u64()?,
            attributes["baton_part"].as_u64().unwrap_or(0),
        ))
    }
}

#[derive(Debug, Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    next_page_url: Option<String>,
}

/// Conversations and TaskRouter for one account.
#[derive(Debug)]
pub struct ConversationsApi {
    api: Arc<CallsApi>,
    conversations: String,
    taskrouter: String,
    workspace_sid: Option<String>,
}

fn sid_of(resource: &Value, prefix: &str) -> Result<String, UpdateError> {
    resource["sid"]
        .as_str()
        .filter(|sid| sid.len() == 34 && sid.starts_with(prefix))
        .map(str::to_owned)
        .ok_or_else(|| UpdateError::Transport(format!("Twilio answered without a {prefix}… sid")))
}

impl ConversationsApi {
    pub fn new(config: &TwilioConfig, api: Arc<CallsApi>) -> Self {
        Self {
            api,
            conversations: config
                .conversations_api_base
                .trim_end_matches('/')
                .to_owned(),
            taskrouter: config.taskrouter_api_base.trim_end_matches('/').to_owned(),
            workspace_sid: config.workspace_sid.clone(),
        }
    }

    pub fn workspace_sid(&self) -> Option<&str> {
        self.workspace_sid.as_deref()
    }

    /// Creates the Conversation of one transfer; its unique name is the
    /// transfer's callback key, so that Twilio refuses a second one.
    pub async fn create_conversation(
        &self,
        key: &str,
        handoff_id: &str,
    ) -> Result<String, UpdateError> {
        let attributes = json!({ "baton_transfer": key, "baton_handoff_id": handoff_id });
        let resource = self
            .api
            .request(
                &format!("{}/v1/Conversations", self.conversations),
                Some(&[
                    ("UniqueName", &format!("baton-{key}")),
                    ("FriendlyName", &format!("Baton handoff {handoff_id}")),
                    ("Attributes", &attributes.to_string()),
                ]),
            )
            .await?;
        sid_of(&resource, "CH")
    }

    /// The Conversation's state: `active`, `inactive` or `closed`.
    pub async fn conversation_state(&self, sid: &str) -> Result<String, UpdateError> {
        let resource = self
            .api
            .request(
                &format!("{}/v1/Conversations/{sid}", self.conversations),
                None,
            )
            .await?;
        Ok(resource["state"].as_str().unwrap_or_default().to_owned())
    }

    /// Closes the Conversation (the handoff ended on Baton's side).
    pub async fn close(&self, sid: &str) -> Result<(), UpdateError> {
        self.api
            .request(
                &format!("{}/v1/Conversations/{sid}", self.conversations),
                Some(&[("State", "closed")]),
            )
            .await
            .map(drop)
    }

    /// Posts one part of a customer's message, its attributes naming the
    /// log's sequence and the part, so that a resumed connector finds it.
    pub async fn post_message(
        &self,
        sid: &str,
        author: &str,
        body: &str,
        attributes: &Value,
    ) -> Result<String, UpdateError> {
        let resource = self
            .api
            .request(
                &format!("{}/v1/Conversations/{sid}/Messages", self.conversations),
                Some(&[
                    ("Author", author),
                    ("Body", body),
                    ("Attributes", &attributes.to_string()),
                ]),
            )
            .await?;
        sid_of(&resource, "IM")
    }

    /// The Conversation's messages, oldest first (at most
    /// [`MAX_MESSAGE_PAGES`] pages).
    pub async fn messages(&self, sid: &str) -> Result<Vec<Message>, UpdateError> {
        let mut url = format!(
            "{}/v1/Conversations/{sid}/Messages?Order=asc&PageSize=100",
            self.conversations
        );
        let mut messages = Vec::new();
        for _ in 0..MAX_MESSAGE_PAGES {
            let page: MessagePage = serde_json::from_value(self.api.request(&url, None).await?)
                .map_err(|e| UpdateError::Transport(format!("unreadable message page: {e}")))?;
            messages.extend(page.messages);
            match page.meta.next_page_url {
                Some(next) if !next.is_empty() => url = next,
                _ => break,
            }
        }
        Ok(messages)
    }

    fn tasks_url(&self) -> Result<String, UpdateError> {
        let workspace = self.workspace_sid.as_deref().ok_or_else(|| {
            UpdateError::Transport("no TaskRouter workspace_sid is configured".into())
        })?;
        Ok(format!(
            "{}/v1/Workspaces/{workspace}/Tasks",
            self.taskrouter
        ))
    }

    /// Creates the chat task that offers the Conversation to an agent.
    pub async fn create_task(
        &self,
        workflow_sid: &str,
        attributes: &str,
        priority: u32,
    ) -> Result<String, UpdateError> {
        let resource = self
            .api
            .request(
                &self.tasks_url()?,
                Some(&[
                    ("WorkflowSid", workflow_sid),
                    ("TaskChannel", "chat"),
                    ("Attributes", attributes),
                    ("Priority", &priority.to_string()),
                ]),
            )
            .await?;
        sid_of(&resource, "WT")
    }

    /// Replaces a task's attributes.
    pub async fn update_task_attributes(
        &self,
        task_sid: &str,
        attributes: &str,
    ) -> Result<(), UpdateError> {
        self.api
            .request(
                &format!("{}/{task_sid}", self.tasks_url()?),
                Some(&[("Attributes", attributes)]),
            )
            .await
            .map(drop)
    }

    /// Withdraws a task no agent has accepted.
    pub async fn cancel_task(&self, task_sid: &str, reason: &str) -> Result<(), UpdateError> {
        self.api
            .request(
                &format!("{}/{task_sid}", self.tasks_url()?),
                Some(&[("AssignmentStatus", "canceled"), ("Reason", reason)]),
            )
            .await
            .map(drop)
    }
}
