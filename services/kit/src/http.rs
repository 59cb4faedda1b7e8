//! One way to serve every HTTP listener (context pages, the agent desktop,
//! webhook and platform callbacks, metrics) with the same limits, so that a
//! peer that opens connections and sends nothing, or a byte a minute, holds
//! a bounded share of the process for a bounded time.
//!
//! `axum::serve` bounds none of it: it has no header-read timeout, no idle
//! timeout and no connection limit. [`serve`] drives hyper's HTTP/1.1
//! connection itself:
//! - **header read**: hyper's timer, from when the connection waits for a
//!   request (accepted, or the previous response sent) to the end of its
//!   headers; so it also ends keep-alive connections that send nothing.
//! - **idle**: a connection on which no byte was read or written for
//!   `idle_timeout` is dropped, in whatever state: a body trickled in, or a
//!   reader who stopped reading. Server-Sent Events keep their connection
//!   busy with their keep-alive comments (15 s).
//! - **request**: the handler must produce the response head within
//!   `request_timeout`, else `408`. A streamed body (SSE) is past its head,
//!   so long-lived streams are not cut by it.
//! - **connections**: at most `max_connections` at once. When full, the
//!   listener stops accepting until one closes: waiting peers queue in the
//!   kernel's backlog (bounded) and are served in turn as slow ones time
//!   out, instead of being reset; the process's descriptors and memory stay
//!   bounded either way.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::tls::HttpListener;

/// Limits of one HTTP listener (the `http` section of a service, or its
/// own section for a metrics listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Longest from when a connection waits for a request (just accepted,
    /// or its previous response sent) to the end of the request's headers.
    /// Default 10 s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection on which no byte moved either way for this long is
    /// closed. Keep it above 15 s where Server-Sent Events are served (the
    /// desktop's keep-alive interval). Default 60 s.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Longest a request may take to its response head; then `408`.
    /// Streamed bodies (SSE) are not bounded by it. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most connections open at once; beyond it the listener stops
    /// accepting until one closes. Default 1024.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

impl HttpLimits {
    /// Checks the values; the error names the key under `section`.
    pub fn check(&self, section: &str) -> Result<(), String> {
        let positive = [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("request_timeout", self.request_timeout),
        ];
        for (key, value) in positive {
            if value < Duration::from_millis(100) {
                return Err(format!("{section}.{key}: must be at least 100ms"));
            }
        }
        if self.max_connections == 0 || self.max_connections > Semaphore::MAX_PERMITS {
            return Err(format!(
                "{section}.max_connections: must be between 1 and {}",
                Semaphore::MAX_PERMITS
            ));
        }
        Ok(())
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown`; then stops
/// accepting, lets each connection finish the request it serves, and
/// returns once every connection is closed. Each request carries the
/// peer's `axum::extract::ConnectInfo<SocketAddr>`.
pub async fn serve(
    mut listener: HttpListener,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    limits
        .check("http")
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stopping = CancellationToken::new();
    let stop = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // A slot first: when full, stop accepting (see the module comment).
        let permit = tokio::select! {
            () = stopping.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (io, peer) = tokio::select! {
            () = stopping.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let router = router.clone();
        let limits = limits.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            connection(io, peer, router, &limits, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every slot free again means every connection has closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Serves one connection until it closes, is idle too long, or (once
/// `stopping`) finishes its request in flight.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    limits: &HttpLimits,
    stopping: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: io,
        activity: activity.clone(),
    });
    let request_timeout = limits.request_timeout;
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let mut router = router.clone();
            async move {
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                match tokio::time::timeout(request_timeout, router.call(request)).await {
                    Ok(Ok(response)) => Ok::<_, Infallible>(response),
                    Ok(Err(never)) => match never {},
                    Err(_) => Ok(request_timed_out()),
                }
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "HTTP connection ended with an error");
                }
                return;
            }
            () = stopping.cancelled(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(limits.idle_timeout) => {
                tracing::debug!(%peer, "HTTP connection idle too long; closed");
                return;
            }
        }
    }
}

fn request_timed_out() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        http::StatusCode::REQUEST_TIMEOUT,
        [(http::header::CONNECTION, "close")],
        "the request took too long",
    )
        .into_response()
}

/// When a connection last moved a byte, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A connection's stream that notes each byte moved.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(600),
            request_timeout: Duration::from_millis(300),
            max_connections: 2,
        }
    }

    async fn start(limits: HttpLimits) -> (SocketAddr, CancellationToken) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router =
            axum::Router::new()
                .route("/", axum::routing::get(|| async { "ok" }))
                .route(
                    "/slow",
                    axum::routing::get(|| async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "late"
                    }),
                )
                .route(
                    "/peer",
                    axum::routing::get(
                        |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                            SocketAddr,
                        >| async move { peer.ip().to_string() },
                    ),
                );
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(serve(
            HttpListener::Plain(listener),
            router,
            limits,
            async move { stopped.cancelled().await },
        ));
        (addr, stop)
    }

    /// Sends `request` and reads until the server closes, within 5 s.
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
        let _ = read.await.expect("the server answers and closes in time");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_partial_header_is_closed_after_the_header_read_timeout() {
        let (addr, _stop) = start(limits()).await;
        let answer = exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n").await;
        assert!(!answer.contains("200 OK"), "{answer}");
        let answer = exchange(
            addr,
            "GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
    }

    #[tokio::test]
    async fn a_slow_handler_gets_408() {
        let (addr, _stop) = start(limits()).await;
        let answer = exchange(addr, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    #[tokio::test]
    async fn beyond_max_connections_the_listener_waits_for_a_free_slot() {
        let (addr, _stop) = start(HttpLimits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_millis(500),
            ..limits()
        })
        .await;
        // Two silent connections take both slots ...
        let mut silent = Vec::new();
        for _ in 0..2 {
            silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // ... so a third is not served until the idle timeout frees one.
        let started = Instant::now();
        let answer = exchange(
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "served at once"
        );
        for mut stream in silent {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte));
            assert!(matches!(read.await, Ok(Ok(0)) | Ok(Err(_))), "closed");
        }
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let server = tokio::spawn(serve(
            HttpListener::Plain(listener),
            router,
            limits(),
            async move { stopped.cancelled().await },
        ));
        stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))));
    }

    #[test]
    fn bad_limits_name_their_key() {
        let error = HttpLimits {
            max_connections: 0,
            ..HttpLimits::default()
        }
        .check("server.http");
        assert_eq!(
            error.expect_err("refused").split(':').next(),
            Some("server.http.max_connections")
        );
        let error = HttpLimits {
            idle_timeout: Duration::ZERO,
            ..HttpLimits::default()
        }
        .check("http");
        assert!(error.expect_err("refused").starts_with("http.idle_timeout"));
    }
}
