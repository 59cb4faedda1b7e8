//! What the connectors that call a platform's HTTP API (Twilio, Amazon
//! Connect, the webhook connector's endpoints) share: the client they call
//! it with ([`client`]), an answer read within a size limit
//! ([`bounded_text`]), a transport failure said without the URL
//! ([`transport_error`]), and the wait for the platform's rate limit,
//! reported to the control service as QUEUED ([`take_turn`]).

use baton_connector_sdk::{Pacer, TransferEvents};

/// A client builder for a platform's API: `user_agent` names the connector
/// and its version (`baton-connector-twilio/0.1.0`), and redirects are
/// never followed: a redirect is an answer, not a place to send the
/// handoff's context or credentials to. The caller adds its timeout.
pub fn client(user_agent: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
}

/// The most a platform's answer may hold. Every answer the connectors read
/// (a call, a task's statistics, an error) is a few kilobytes; a larger one
/// is refused unread, so that a broken or hostile endpoint cannot make a
/// connector buffer without bound.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The body of `response` as text, at most `max` bytes: refused with the
/// reason (never the body) when its Content-Length says more, or as soon
/// as more arrives.
pub async fn bounded_text(mut response: reqwest::Response, max: usize) -> Result<String, String> {
    let too_large = || format!("the answer is larger than {max} bytes");
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())
}

/// A request that got no answer, said without its URL: a URL may carry
/// an account's identifiers or an endpoint's own credentials, and this
/// text goes into events and logs.
pub fn transport_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "the request timed out".into()
    } else {
        error.without_url().to_string()
    }
}

/// Waits for `pacer` to let one request go. A wait is reported first on
/// `events` as QUEUED (the requests ahead, the wait, and `limit`, e.g.
/// "Twilio's call-update rate limit (1/s)"), so that the control service
/// and the customer know why nothing happens yet.
pub async fn take_turn(pacer: &Pacer, events: Option<&TransferEvents>, limit: &str) {
    let slot = pacer.reserve();
    if let Some(events) = events.filter(|_| !slot.wait.is_zero()) {
        events
            .queued_with_detail(
                slot.ahead + 1,
                slot.wait,
                &format!("waiting {} ms for {limit}", slot.wait.as_millis()),
            )
            .await;
    }
    slot.ready().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_reported_as_queued_and_a_free_turn_is_not() {
        let pacer = Pacer::new(1.0, 1);
        let (events, mut receiver) = TransferEvents::channel();
        take_turn(&pacer, Some(&events), "the test's rate limit (1/s)").await;
        let started = tokio::time::Instant::now();
        take_turn(&pacer, Some(&events), "the test's rate limit (1/s)").await;
        // Paused time moves only by the pacer's own sleep.
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        events.completed("").await;
        let queued = receiver.recv().await.expect("an event");
        // One request ahead of it: it is second in line.
        assert_eq!(queued.queue_position, 2);
        assert_eq!(
            queued.detail,
            "waiting 1000 ms for the test's rate limit (1/s)"
        );
        let next = receiver.recv().await.expect("the terminal event");
        assert_eq!(next.detail, "", "only the wait was reported: {next:?}");
    }

    /// Serves one HTTP answer of `body_bytes` bytes on loopback, chunked
    /// (no Content-Length) when `chunked`; returns its URL.
    async fn answer_of(body_bytes: usize, chunked: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let body = "x".repeat(body_bytes);
            let answer = if chunked {
                format!(
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = socket.write_all(answer.as_bytes()).await;
        });
        url
    }

    #[tokio::test]
    async fn an_answer_beyond_the_limit_is_refused_whether_or_not_it_says_its_length() {
        let http = client("baton-test/0").build().expect("client");
        for chunked in [false, true] {
            let within = http
                .get(answer_of(100, chunked).await)
                .send()
                .await
                .expect("answer");
            assert_eq!(bounded_text(within, 100).await.map(|t| t.len()), Ok(100));
            let beyond = http
                .get(answer_of(101, chunked).await)
                .send()
                .await
                .expect("answer");
            assert_eq!(
                bounded_text(beyond, 100).await,
                Err("the answer is larger than 100 bytes".to_owned()),
                "chunked: {chunked}"
            );
        }
    }

    #[tokio::test]
    async fn a_transport_error_is_said_without_its_url() {
        // Nothing listens on port 9 of loopback in the test environment;
        // the account identifier in the path must not appear in the text.
        let error = client("baton-test/0")
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client")
            .get("http://127.0.0.1:9/Accounts/AC-secret-account/Calls.json")
            .send()
            .await
            .expect_err("nothing listens");
        let text = transport_error(error);
        assert!(!text.contains("AC-secret-account"), "{text}");
    }
}
