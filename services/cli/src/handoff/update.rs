//! `baton handoff update <id>`: what the runtime does with UpdateHandoff
//! while the customer waits — more transcript, gathered or corrected
//! entities, notes — against the context version it last read.

use baton_proto::handoff::v1::UpdateHandoffRequest;
use serde_json::json;
use tonic::Code;

use super::{CliError, Client, Connection, entities_of, turns_of};
use crate::exit;

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    id: String,
    /// The context version this update was made against
    /// (`context_version` in `baton handoff get --json`).
    #[arg(long = "version")]
    expected_version: u64,
    /// Idempotency key; a random one when omitted.
    #[arg(long)]
    request_id: Option<String>,
    /// A transcript turn to append, SPEAKER:TEXT (repeatable).
    #[arg(long = "turn")]
    turns: Vec<String>,
    /// A gathered fact, NAME=VALUE; replaces an entity of that name (repeatable).
    #[arg(long = "entity")]
    entities: Vec<String>,
    /// A sensitive fact, NAME=VALUE, masked in screen pops (repeatable).
    #[arg(long = "sensitive-entity")]
    sensitive_entities: Vec<String>,
    /// Notes to append to the agent notes.
    #[arg(long, default_value = "")]
    notes: String,
    #[command(flatten)]
    pub(super) connection: Connection,
}

pub(super) async fn update(client: &mut Client, args: &UpdateArgs) -> Result<u8, CliError> {
    let request = UpdateHandoffRequest {
        handoff_id: args.id.clone(),
        request_id: args
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        expected_context_version: args.expected_version,
        // Unstamped, so that a retry under the same --request-id is the
        // same update.
        turns: turns_of(&args.turns, None)?,
        entities: entities_of(&args.entities, &args.sensitive_entities)?,
        notes: args.notes.clone(),
    };
    let response = match client.update_handoff(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == Code::Aborted => {
            return Err(CliError {
                code: exit::CONTEXT_CONFLICT,
                message: format!(
                    "the context moved on since version {}: read the handoff again ({})",
                    args.expected_version,
                    status.message()
                ),
            });
        }
        Err(status) => return Err(status.into()),
    };
    if args.connection.json {
        println!(
            "{}",
            json!({
                "applied": response.applied,
                "context_version": response.context_version,
                "handoff_id": args.id,
            })
        );
    } else {
        let verb = if response.applied {
            "updated"
        } else {
            "already updated by this request id"
        };
        println!(
            "handoff {} {verb}: context version {}",
            args.id, response.context_version
        );
    }
    Ok(exit::OK)
}
