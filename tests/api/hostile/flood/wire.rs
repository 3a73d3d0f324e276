//! Any bytes as the body of a well-framed gRPC message, to any path: tonic's generic client with a
//! codec that passes bytes through both ways. Every call runs under a deadline.

use std::time::Duration;

use http::uri::PathAndQuery;
use prost::bytes::{Buf, BufMut};
use tonic::{
    Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::AsciiMetadataValue,
    transport::Channel,
};

use super::contract::{Method, Outcome};

/// What each call gets, sent as `grpc-timeout` too. A stream must open within it.
const DEADLINE: Duration = Duration::from_secs(2);
/// How long an open stream is given to send its first message before it is dropped.
const FIRST_MESSAGE: Duration = Duration::from_millis(100);

/// Bytes in, bytes out: the message is whatever the test says it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `body` to `method` with `authorization` (when it is a valid header value at all) and
/// says how it went.
pub async fn call(
    channel: Channel,
    method: Method,
    body: Vec<u8>,
    authorization: Option<Vec<u8>>,
) -> Outcome {
    let mut request = Request::new(body);
    request.set_timeout(DEADLINE);
    if let Some(value) = authorization.and_then(|v| AsciiMetadataValue::try_from(&v[..]).ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    let exchange = async {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(format!("transport: {e}")))?;
        let path = PathAndQuery::from_static(method.path());
        if !method.streams() {
            let answer = grpc.unary(request, path, RawCodec).await?;
            return Ok(Outcome::Answered(answer.into_inner()));
        }
        let mut stream = grpc
            .server_streaming(request, path, RawCodec)
            .await?
            .into_inner();
        Ok(
            match tokio::time::timeout(FIRST_MESSAGE, stream.message()).await {
                Ok(Ok(Some(event))) => Outcome::Opened(Some(event)),
                Ok(Ok(None)) => Outcome::Ended,
                Ok(Err(status)) => Outcome::Failed(status),
                Err(_) => Outcome::Opened(None),
            },
        )
    };
    match tokio::time::timeout(DEADLINE + FIRST_MESSAGE, exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(status)) => Outcome::Failed(status),
        Err(_) => Outcome::Hung,
    }
}
