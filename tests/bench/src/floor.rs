//! The transport's floor: a HandoffService that does nothing but answer
//! with a canned response, so a unary call to it costs what tonic, HTTP/2
//! and loopback TCP cost for the same payload sizes. With `commit` set, it
//! first commits one row: the floor of any API that answers only once what
//! it was told is on disk.

use baton_proto::handoff::v1::handoff_service_server::{HandoffService, HandoffServiceServer};
use baton_proto::handoff::v1::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

pub struct EmptyHandoffService {
    pub canned: CreateHandoffResponse,
    /// What WatchHandoff streams: all but the last at once, the last once
    /// `release` is cancelled, then the stream ends.
    pub watch: Vec<WatchHandoffResponse>,
    pub release: CancellationToken,
    /// When set, each CreateHandoff commits one row through this raw SQLite
    /// connection (`crate::store::raw_sqlite`) before it answers.
    pub commit: Option<Arc<Mutex<rusqlite::Connection>>>,
}

#[tonic::async_trait]
impl HandoffService for EmptyHandoffService {
    async fn create_handoff(
        &self,
        _request: Request<CreateHandoffRequest>,
    ) -> Result<Response<CreateHandoffResponse>, Status> {
        if let Some(connection) = self.commit.clone() {
            tokio::task::spawn_blocking(move || {
                let connection = connection.lock().unwrap_or_else(|e| e.into_inner());
                crate::store::commit_raw_row(&connection)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(Response::new(self.canned.clone()))
    }

    async fn get_handoff(
        &self,
        _request: Request<GetHandoffRequest>,
    ) -> Result<Response<GetHandoffResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn list_handoffs(
        &self,
        _request: Request<ListHandoffsRequest>,
    ) -> Result<Response<ListHandoffsResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn cancel_handoff(
        &self,
        _request: Request<CancelHandoffRequest>,
    ) -> Result<Response<CancelHandoffResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    type ConverseHandoffStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<ConverseHandoffResponse, Status>> + Send>,
    >;

    async fn update_handoff(
        &self,
        _request: Request<UpdateHandoffRequest>,
    ) -> Result<Response<UpdateHandoffResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn check_availability(
        &self,
        _request: Request<CheckAvailabilityRequest>,
    ) -> Result<Response<CheckAvailabilityResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn record_outcome(
        &self,
        _request: Request<RecordOutcomeRequest>,
    ) -> Result<Response<RecordOutcomeResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn get_outcome_metrics(
        &self,
        _request: Request<GetOutcomeMetricsRequest>,
    ) -> Result<Response<GetOutcomeMetricsResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn converse_handoff(
        &self,
        _request: Request<tonic::Streaming<ConverseHandoffRequest>>,
    ) -> Result<Response<Self::ConverseHandoffStream>, Status> {
        Err(Status::unimplemented(
            "the floor measures CreateHandoff only",
        ))
    }

    type WatchHandoffStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<WatchHandoffResponse, Status>> + Send>,
    >;

    async fn watch_handoff(
        &self,
        _request: Request<WatchHandoffRequest>,
    ) -> Result<Response<Self::WatchHandoffStream>, Status> {
        let mut events = self.watch.clone();
        let last = events.pop();
        let release = self.release.clone();
        let first = tokio_stream::iter(events.into_iter().map(Ok));
        let last = futures::stream::once(async move {
            release.cancelled().await;
            last
        })
        .filter_map(|event| event.map(Ok));
        Ok(Response::new(Box::pin(first.chain(last))))
    }

    async fn evaluate_escalation(
        &self,
        _request: Request<EvaluateEscalationRequest>,
    ) -> Result<Response<EvaluateEscalationResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn reveal_entity(
        &self,
        _request: Request<RevealEntityRequest>,
    ) -> Result<Response<RevealEntityResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn revoke_context_tokens(
        &self,
        _request: Request<RevokeContextTokensRequest>,
    ) -> Result<Response<RevokeContextTokensResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn list_audit_records(
        &self,
        _request: Request<ListAuditRecordsRequest>,
    ) -> Result<Response<ListAuditRecordsResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }
}

/// Serves the empty service on an ephemeral loopback port until `stop`,
/// with the control service's per-connection concurrency limit; `nodelay`
/// sets TCP_NODELAY on accepted connections.
pub async fn start(
    service: EmptyHandoffService,
    nodelay: bool,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Without TCP_NODELAY a response written in pieces waits for the
    // client's delayed ACK (about 40 ms on Linux): the floor is the
    // transport at its best.
    let incoming = TcpListenerStream::new(listener).map(move |stream| {
        if let (true, Ok(stream)) = (nodelay, &stream) {
            let _ = stream.set_nodelay(true);
        }
        stream
    });
    let server = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .add_service(HandoffServiceServer::new(service))
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await });
    tokio::spawn(server);
    Ok(addr)
}
