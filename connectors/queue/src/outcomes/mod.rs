//! How the handoffs of the last day went, for the supervisor view: the
//! control service's `GetOutcomeMetrics`, called with the desk's own
//! supervisor credential (`[outcomes]`).
//!
//! One refresh is 25 calls: the day as a whole (the figures and the table)
//! and its 24 one-hour windows (the chart), at most [`CONCURRENCY`] at a
//! time, all within `outcomes.timeout`. The answer is kept for
//! [`FRESH_FOR`] and shared by every supervisor, and one refresh runs at a
//! time, so that open supervisor views do not multiply the calls.
//!
//! The figures are those of the credential's tenant (`outcomes.tenant`),
//! shown only to supervisors and admins who see that tenant. A desk
//! serving several tenants would need one credential per tenant; this
//! module holds one.

pub mod config;
pub mod http;
pub mod view;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use baton_proto::bearer::BearerCredential;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{GetOutcomeMetricsRequest, GetOutcomeMetricsResponse};
use futures::{StreamExt, TryStreamExt};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub use config::OutcomesConfig;
pub use view::OutcomesView;

/// Hourly calls in flight at once: enough to fill a refresh in a few
/// round trips, few enough not to load the control service.
pub const CONCURRENCY: usize = 4;
/// How long one answer serves every supervisor's refresh.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// Where the figures come from: the control service in production, an
/// in-memory answer in the unit tests.
pub trait OutcomeSource: Send + Sync {
    /// `GetOutcomeMetrics` for the handoffs created in [since, until).
    fn metrics(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> impl Future<Output = Result<GetOutcomeMetricsResponse, tonic::Status>> + Send;
}

/// The day until `until`, in total and hour by hour.
pub async fn gather<S: OutcomeSource>(
    source: &S,
    tenant: &str,
    until: SystemTime,
) -> Result<OutcomesView, tonic::Status> {
    let total = source.metrics(until - view::DAY, until).await?;
    let hours: Vec<_> = futures::stream::iter(view::hour_windows(until))
        .map(|(since, until)| source.metrics(since, until))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(view::view(tenant, until, total, hours))
}

/// Why the figures could not be read. Its message is shown to the
/// supervisor: short, and never the credential.
#[derive(Debug, thiserror::Error)]
pub enum OutcomesError {
    #[error("{message}")]
    Control { code: Code, message: &'static str },
    #[error("the control service did not answer in time")]
    TimedOut,
}

impl OutcomesError {
    fn from_status(status: &tonic::Status) -> Self {
        let message = match status.code() {
            Code::Unauthenticated => {
                "the control service refused the desk's credential (outcomes.api_key_file)"
            }
            Code::PermissionDenied => {
                "the desk's credential may not read outcome metrics (it needs the supervisor role)"
            }
            Code::Unavailable => "the control service cannot be reached",
            Code::DeadlineExceeded | Code::Cancelled => {
                return OutcomesError::TimedOut;
            }
            Code::ResourceExhausted => "the control service is busy; try again shortly",
            Code::Unimplemented => "the control service does not offer outcome metrics",
            _ => "the control service could not give the outcome metrics",
        };
        OutcomesError::Control {
            code: status.code(),
            message,
        }
    }
}

/// The control service's `HandoffService`, called with the credential.
#[derive(Debug, Clone)]
pub struct ControlSource {
    client: HandoffServiceClient<InterceptedService<Channel, BearerCredential>>,
    timeout: Duration,
}

impl ControlSource {
    /// A client of `config.control_endpoint` that connects at its first
    /// call (the desk starts whether or not the control service is up).
    pub fn new(config: &OutcomesConfig) -> Result<Self, String> {
        let credential = config.credential()?;
        let mut endpoint = Endpoint::from_shared(config.control_endpoint.clone())
            .map_err(|e| format!("outcomes.control_endpoint: {e}"))?
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &config.tls {
            let tls = tls.tonic_config().map_err(|e| format!("outcomes.{e}"))?;
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("outcomes.tls: {e}"))?;
        }
        Ok(Self {
            client: HandoffServiceClient::with_interceptor(endpoint.connect_lazy(), credential),
            timeout: config.timeout,
        })
    }
}

impl OutcomeSource for ControlSource {
    fn metrics(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> impl Future<Output = Result<GetOutcomeMetricsResponse, tonic::Status>> + Send {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(GetOutcomeMetricsRequest {
            since: Some(since.into()),
            until: Some(until.into()),
        });
        request.set_timeout(self.timeout);
        async move {
            client
                .get_outcome_metrics(request)
                .await
                .map(tonic::Response::into_inner)
        }
    }
}

/// The panel's figures: the source, whose tenant they are, and the last
/// answer.
#[derive(Debug)]
pub struct Outcomes<S = ControlSource> {
    source: S,
    tenant: String,
    timeout: Duration,
    /// The last answer and when it was read; the lock also makes one
    /// refresh run at a time.
    last: tokio::sync::Mutex<Option<(Instant, Arc<OutcomesView>)>>,
}

impl Outcomes<ControlSource> {
    /// From `[outcomes]`: reads the credential now.
    pub fn from_config(config: &OutcomesConfig) -> Result<Self, String> {
        Ok(Self::new(
            ControlSource::new(config)?,
            &config.tenant,
            config.timeout,
        ))
    }
}

impl<S: OutcomeSource> Outcomes<S> {
    pub fn new(source: S, tenant: &str, timeout: Duration) -> Self {
        Self {
            source,
            tenant: tenant.to_owned(),
            timeout,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The tenant whose figures these are.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The last day's figures, read again when the last answer is older
    /// than [`FRESH_FOR`]; bounded by `outcomes.timeout`.
    pub async fn view(&self) -> Result<Arc<OutcomesView>, OutcomesError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut last = tokio::time::timeout_at(deadline, self.last.lock())
            .await
            .map_err(|_| OutcomesError::TimedOut)?;
        if let Some((at, view)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(view.clone());
        }
        let gathered = tokio::time::timeout_at(
            deadline,
            gather(&self.source, &self.tenant, SystemTime::now()),
        )
        .await
        .map_err(|_| OutcomesError::TimedOut)?;
        let view = gathered.map_err(|status| {
            // The status is the control service's; the credential is in
            // no part of it.
            tracing::warn!(code = ?status.code(), message = status.message(), "GetOutcomeMetrics failed");
            OutcomesError::from_status(&status)
        })?;
        let view = Arc::new(view);
        *last = Some((Instant::now(), view.clone()));
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use baton_proto::handoff::v1::OutcomeFigures;

    use super::*;

    /// Answers every call with one handoff created at `at` if the window
    /// holds it, and remembers the windows asked for.
    struct Recorded {
        at: SystemTime,
        calls: Mutex<Vec<(SystemTime, SystemTime)>>,
        fail: Option<Code>,
        delay: Duration,
    }

    impl Recorded {
        fn new(at: SystemTime) -> Self {
            Self {
                at,
                calls: Mutex::new(Vec::new()),
                fail: None,
                delay: Duration::ZERO,
            }
        }
    }

    impl OutcomeSource for Recorded {
        fn metrics(
            &self,
            since: SystemTime,
            until: SystemTime,
        ) -> impl Future<Output = Result<GetOutcomeMetricsResponse, tonic::Status>> + Send {
            self.calls.lock().expect("lock").push((since, until));
            let held = since <= self.at && self.at < until;
            let fail = self.fail;
            let delay = self.delay;
            async move {
                tokio::time::sleep(delay).await;
                if let Some(code) = fail {
                    return Err(tonic::Status::new(code, "no"));
                }
                Ok(GetOutcomeMetricsResponse {
                    total: Some(OutcomeFigures {
                        handoffs: u64::from(held),
                        abandoned: u64::from(held),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            }
        }
    }

    #[tokio::test]
    async fn a_refresh_asks_for_the_day_then_each_hour_and_puts_the_handoff_in_its_bar() {
        let now = SystemTime::now();
        let source = Recorded::new(now - Duration::from_secs(90 * 60));
        let outcomes = Outcomes::new(source, "acme", Duration::from_secs(5));
        let view = outcomes.view().await.expect("view");
        let calls = outcomes.source.calls.lock().expect("lock").clone();
        assert_eq!(calls.len(), 25);
        let (since, until) = calls[0];
        assert_eq!(until.duration_since(since).ok(), Some(view::DAY));
        assert_eq!(&calls[1..], &view::hour_windows(until)[..]);
        assert_eq!(view.total.handoffs, 1);
        let bars: Vec<u64> = view.hours.iter().map(|h| h.handoffs).collect();
        assert_eq!(bars.iter().sum::<u64>(), 1);
        assert_eq!(
            bars[22], 1,
            "90 minutes ago is the second-last hour: {bars:?}"
        );

        // A second refresh soon after is the same answer, with no call.
        let again = outcomes.view().await.expect("view");
        assert!(Arc::ptr_eq(&view, &again));
        assert_eq!(outcomes.source.calls.lock().expect("lock").len(), 25);
    }

    #[tokio::test]
    async fn control_errors_become_short_messages_and_a_slow_control_service_times_out() {
        let mut source = Recorded::new(SystemTime::now());
        source.fail = Some(Code::Unauthenticated);
        let outcomes = Outcomes::new(source, "acme", Duration::from_secs(5));
        let error = outcomes.view().await.expect_err("refused");
        assert!(
            error.to_string().contains("outcomes.api_key_file"),
            "{error}"
        );
        assert!(matches!(
            OutcomesError::from_status(&tonic::Status::permission_denied("x")),
            OutcomesError::Control {
                code: Code::PermissionDenied,
                ..
            }
        ));
        assert!(matches!(
            OutcomesError::from_status(&tonic::Status::deadline_exceeded("x")),
            OutcomesError::TimedOut
        ));

        let mut slow = Recorded::new(SystemTime::now());
        slow.delay = Duration::from_secs(3600);
        let outcomes = Outcomes::new(slow, "acme", Duration::from_millis(50));
        assert!(matches!(
            outcomes.view().await.expect_err("bounded"),
            OutcomesError::TimedOut
        ));
    }
}
