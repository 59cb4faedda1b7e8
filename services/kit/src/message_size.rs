//! Names the configured limit when a request is larger than a server
//! accepts. tonic refuses such a request from its frame header, before
//! reading the body, with `OUT_OF_RANGE` and a message that names no
//! setting; this layer turns that answer into `RESOURCE_EXHAUSTED` (gRPC's
//! code for a message over the configured maximum) with reason
//! `REQUEST_TOO_LARGE` and a message naming the key, e.g. "request is
//! 2097170 bytes; the limit is limits.max_request_bytes = 262144".

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderMap;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::status::with_reason;

/// What tonic's refusal says; the only `OUT_OF_RANGE` without details that
/// a Baton server sends from its headers.
const TONIC_TOO_LARGE: &str = "decoded message length too large";

/// See the module documentation. `key` is the configuration key of the
/// limit, `limit` its value: the one given to `max_decoding_message_size`.
#[derive(Debug, Clone, Copy)]
pub struct MessageSizeLayer {
    key: &'static str,
    limit: usize,
}

impl MessageSizeLayer {
    pub fn new(key: &'static str, limit: usize) -> Self {
        Self { key, limit }
    }

    /// `service` behind this layer (as `Layer::layer`, without naming tower).
    pub fn around<S>(self, service: S) -> MessageSizeService<S> {
        MessageSizeService {
            inner: service,
            layer: self,
        }
    }

    /// The status for a refusal of tonic's, or None for any other answer.
    fn rewrite(&self, headers: &HeaderMap) -> Option<Status> {
        let is_out_of_range = headers
            .get(Status::GRPC_STATUS)
            .is_some_and(|code| code.as_bytes() == b"11");
        if !is_out_of_range || headers.contains_key(Status::GRPC_STATUS_DETAILS) {
            return None;
        }
        let status = Status::from_header_map(headers)?;
        if !status.message().contains(TONIC_TOO_LARGE) {
            return None;
        }
        let (key, limit) = (self.key, self.limit);
        let message = match found_bytes(status.message()) {
            Some(found) => format!("request is {found} bytes; the limit is {key} = {limit}"),
            None => format!("request is larger than the limit {key} = {limit}"),
        };
        Some(with_reason(
            Code::ResourceExhausted,
            "REQUEST_TOO_LARGE",
            message,
        ))
    }
}

/// N in tonic's "found N bytes".
fn found_bytes(message: &str) -> Option<usize> {
    let rest = &message[message.find("found ")? + "found ".len()..];
    rest.split(' ').next()?.parse().ok()
}

impl<S> Layer<S> for MessageSizeLayer {
    type Service = MessageSizeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSizeService {
            inner,
            layer: *self,
        }
    }
}

/// The service [`MessageSizeLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct MessageSizeService<S> {
    inner: S,
    layer: MessageSizeLayer,
}

/// Served under the name of the service it wraps.
impl<S: tonic::server::NamedService> tonic::server::NamedService for MessageSizeService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MessageSizeService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: Box::pin(self.inner.call(request)),
            layer: self.layer,
        }
    }
}

/// The inner service's response, its status rewritten when it is tonic's
/// size refusal.
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    layer: MessageSizeLayer,
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(Ok(mut response)) => {
                if let Some(status) = this.layer.rewrite(response.headers()) {
                    let headers = response.headers_mut();
                    headers.remove(Status::GRPC_STATUS);
                    headers.remove(Status::GRPC_MESSAGE);
                    // Only fails for a message that is not a header value,
                    // which ours always is; tonic's answer stands then.
                    if status.add_header(headers).is_err() {
                        headers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("11"));
                    }
                }
                Poll::Ready(Ok(response))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: &Status) -> HeaderMap {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).expect("headers");
        headers
    }

    #[test]
    fn tonics_refusal_names_the_key() {
        let layer = MessageSizeLayer::new("limits.max_request_bytes", 262_144);
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 2097170 bytes, the limit is: 262144 bytes",
        );
        let status = layer.rewrite(&headers_of(&tonic)).expect("rewritten");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "request is 2097170 bytes; the limit is limits.max_request_bytes = 262144"
        );
    }

    #[test]
    fn other_answers_are_left_alone() {
        let layer = MessageSizeLayer::new("limits.max_request_bytes", 262_144);
        for status in [
            Status::out_of_range("page 9 does not exist"),
            Status::invalid_argument("decoded message length too large"),
            with_reason(Code::OutOfRange, "X", "decoded message length too large"),
            Status::ok(""),
        ] {
            assert!(layer.rewrite(&headers_of(&status)).is_none(), "{status:?}");
        }
        assert!(layer.rewrite(&HeaderMap::new()).is_none());
    }
}
