//! The kit's side of the wire: ConnectorService calls with time limits, and
//! a follower that reads a StartTransfer stream into an [`Observed`].

use std::time::Duration;

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    CancelTransferRequest, CancelTransferResponse, GetConnectorInfoRequest,
    GetConnectorInfoResponse, StartTransferRequest, StartTransferResponse,
};
use tokio::time::{Instant, timeout};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::events::{Observed, StreamEnd, is_terminal};

/// How long a unary call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stream may stay open after its terminal event before the kit
/// calls it a hang.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A connection to the connector under test.
#[derive(Debug, Clone)]
pub struct ConnectorClient {
    pub endpoint: String,
    pub channel: Channel,
}

fn deadline_status(what: &str) -> Status {
    Status::deadline_exceeded(format!("{what}: no answer within {CALL_TIMEOUT:?}"))
}

impl ConnectorClient {
    pub async fn connect(endpoint: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())?
            .connect_timeout(CALL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {endpoint}: {e}"))?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            channel,
        })
    }

    fn client(&self) -> ConnectorServiceClient<Channel> {
        ConnectorServiceClient::new(self.channel.clone()).max_decoding_message_size(4 << 20)
    }

    pub async fn info(&self) -> Result<GetConnectorInfoResponse, Status> {
        timeout(
            CALL_TIMEOUT,
            self.client().get_connector_info(GetConnectorInfoRequest {}),
        )
        .await
        .map_err(|_| deadline_status("GetConnectorInfo"))?
        .map(|r| r.into_inner())
    }

    /// Starts (or re-attaches to) a transfer. Err when the call itself is
    /// refused; a refusal can also come as the stream's first item, which
    /// the follower records as its end.
    pub async fn start(
        &self,
        request: StartTransferRequest,
        label: impl Into<String>,
    ) -> Result<Follower, Status> {
        let stream = timeout(CALL_TIMEOUT, self.client().start_transfer(request))
            .await
            .map_err(|_| deadline_status("StartTransfer"))??
            .into_inner();
        Ok(Follower {
            stream: Some(stream),
            observed: Observed {
                label: label.into(),
                events: Vec::new(),
                end: StreamEnd::Open,
            },
            violations: Vec::new(),
        })
    }

    /// Starts a transfer and records a refusal at the call as the stream's
    /// end, so that both ways of refusing look alike.
    pub async fn start_observed(
        &self,
        request: StartTransferRequest,
        label: impl Into<String>,
    ) -> Follower {
        let label = label.into();
        match self.start(request, label.clone()).await {
            Ok(follower) => follower,
            Err(status) => Follower {
                stream: None,
                violations: violations(&status),
                observed: Observed {
                    label,
                    events: Vec::new(),
                    end: StreamEnd::Status(status.code(), status.message().to_owned()),
                },
            },
        }
    }

    pub async fn cancel(&self, handoff_id: &str, attempt: u32) -> Result<bool, Status> {
        self.cancel_answer(handoff_id, attempt)
            .await
            .map(|answer| answer.cancelled)
    }

    /// CancelTransfer's whole answer: `cancelled` and the outcome.
    pub async fn cancel_answer(
        &self,
        handoff_id: &str,
        attempt: u32,
    ) -> Result<CancelTransferResponse, Status> {
        self.cancel_as(crate::requests::TENANT, handoff_id, attempt)
            .await
    }

    /// CancelTransfer on behalf of `tenant`.
    pub async fn cancel_as(
        &self,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
    ) -> Result<CancelTransferResponse, Status> {
        timeout(
            CALL_TIMEOUT,
            self.client().cancel_transfer(CancelTransferRequest {
                handoff_id: handoff_id.into(),
                attempt,
                tenant: tenant.into(),
            }),
        )
        .await
        .map_err(|_| deadline_status("CancelTransfer"))?
        .map(|r| r.into_inner())
    }
}

/// Reads one StartTransfer stream.
#[derive(Debug)]
pub struct Follower {
    stream: Option<Streaming<StartTransferResponse>>,
    pub observed: Observed,
    /// The fields named by the ending status's `BadRequest` details.
    pub violations: Vec<String>,
}

/// The fields a status's `BadRequest` details name.
pub fn violations(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

impl Follower {
    pub fn is_open(&self) -> bool {
        self.observed.end == StreamEnd::Open && self.stream.is_some()
    }

    /// Reads one message, waiting at most `wait`; false when nothing came
    /// (the stream ended, or the wait passed).
    async fn read_one(&mut self, wait: Duration) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        match timeout(wait, stream.message()).await {
            Err(_) => false,
            Ok(Ok(Some(event))) => {
                self.observed.events.push(event);
                true
            }
            Ok(Ok(None)) => {
                self.observed.end = StreamEnd::Closed;
                self.stream = None;
                false
            }
            Ok(Err(status)) => {
                self.violations = violations(&status);
                self.observed.end = StreamEnd::Status(status.code(), status.message().to_owned());
                self.stream = None;
                false
            }
        }
    }

    /// Reads until an event satisfying `found` arrives (true), or the stream
    /// ends or `wait` passes (false).
    pub async fn wait_for(
        &mut self,
        found: impl Fn(&StartTransferResponse) -> bool,
        wait: Duration,
    ) -> bool {
        let until = Instant::now() + wait;
        if self.observed.events.iter().any(&found) {
            return true;
        }
        // Bounded: each round reads one event or ends.
        for _ in 0..10_000 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_one(left).await {
                return false;
            }
            if self.observed.events.last().is_some_and(&found) {
                return true;
            }
        }
        false
    }

    /// Reads until no event comes for `quiet`, or the stream ends, or
    /// `limit` passes: what a holding transfer reached.
    pub async fn settle(&mut self, quiet: Duration, limit: Duration) {
        let until = Instant::now() + limit;
        for _ in 0..10_000 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_one(quiet.min(left)).await {
                return;
            }
        }
    }

    /// Reads to the end of the stream, waiting at most `wait` for the
    /// terminal event and then a little for the stream to close (anything
    /// after the terminal event is recorded, for the checks to find).
    pub async fn finish(&mut self, wait: Duration) -> &Observed {
        self.wait_for(|e| is_terminal(e.kind), wait).await;
        if self.is_open() && self.observed.terminal().is_some() {
            // Bounded: a stream that keeps talking after its terminal
            // event is read a few times, then left as open.
            for _ in 0..8 {
                if !self.read_one(CLOSE_WAIT).await {
                    break;
                }
            }
        }
        &self.observed
    }

    /// The refusal, when the stream ended with an error before any event.
    pub fn refusal(&self) -> Option<(Code, &str)> {
        match &self.observed.end {
            StreamEnd::Status(code, message) if self.observed.events.is_empty() => {
                Some((*code, message.as_str()))
            }
            _ => None,
        }
    }

    pub fn into_observed(self) -> Observed {
        self.observed
    }
}
