//! The codec of every Baton service stub: prost, except that a request body
//! that is not the message it claims to be is the caller's mistake
//! (`INVALID_ARGUMENT`), not the server's (`INTERNAL`, tonic's default).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// [`tonic_prost::ProstCodec`] with a decoder that answers a malformed
/// request with `INVALID_ARGUMENT` naming the message. Generated stubs use it
/// through `codec_path` (proto/build.rs), on both servers and clients.
#[derive(Debug, Clone)]
pub struct BatonCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for BatonCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for BatonCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BatonDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BatonDecoder { _pd: PhantomData }
    }
}

/// Decodes `U`; see [`BatonCodec`].
#[derive(Debug, Clone)]
pub struct BatonDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default> Decoder for BatonDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|error| decode_error::<U>(&error))
    }
}

/// The status for a body that is not a `U`. Every request message of the
/// contracts is named `…Request` (buf lint STANDARD), so a server decoding
/// one tells the caller its request is malformed; a client decoding a
/// malformed response keeps gRPC's `INTERNAL`.
fn decode_error<U>(error: &prost::DecodeError) -> Status {
    let name = message_name::<U>();
    if name.ends_with("Request") {
        Status::invalid_argument(format!(
            "request body is not a valid {name} (protobuf): {error}"
        ))
    } else {
        Status::internal(format!("response body is not a valid {name}: {error}"))
    }
}

/// `CreateHandoffRequest` for `baton_proto::handoff::v1::CreateHandoffRequest`.
fn message_name<U>() -> &'static str {
    let path = std::any::type_name::<U>();
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::v1::{CreateHandoffRequest, CreateHandoffResponse};

    #[test]
    fn a_malformed_request_is_invalid_argument_naming_the_message() {
        // Field 1 (request_id) as a string whose length runs past the end.
        let error = CreateHandoffRequest::decode(&[0x0a, 0x7f, b'x'][..]).expect_err("malformed");
        let status = decode_error::<CreateHandoffRequest>(&error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status
                .message()
                .contains("not a valid CreateHandoffRequest"),
            "{status:?}"
        );
        let status = decode_error::<CreateHandoffResponse>(&error);
        assert_eq!(status.code(), tonic::Code::Internal);
    }
}
