//! ConverseHandoff: the live conversation of a chat handoff between the
//! customer (through the runtime) and the human (through the connector).

use std::pin::Pin;

use baton_proto::handoff::v1::{ConverseHandoffRequest, ConverseHandoffResponse};
use tokio_stream::Stream;
use tonic::{Status, Streaming};

use super::HandoffApi;

/// What a conversation stream carries: the log's entries and the other
/// side's hints, or one status that ends it.
pub type ConverseStream =
    Pin<Box<dyn Stream<Item = Result<ConverseHandoffResponse, Status>> + Send>>;

impl HandoffApi {
    pub(super) async fn converse(
        &self,
        _tenant: String,
        _requests: Streaming<ConverseHandoffRequest>,
    ) -> Result<ConverseStream, Status> {
        Err(Status::unimplemented("ConverseHandoff is not served yet"))
    }
}
