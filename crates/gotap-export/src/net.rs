//! OTLP over the network: gRPC (tonic) and HTTP/protobuf (hyper). Both run their futures on the
//! export thread's current-thread tokio runtime, each call bounded by a timeout.
use crate::config::OtlpConfig;
use crate::exporter::{Batch, ExportError, Exporter};
use crate::own::OwnConnection;
use crate::Error;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::Runtime;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};

fn rejected(resp: &ExportTraceServiceResponse) -> u64 {
    resp.partial_success
        .as_ref()
        .map(|p| p.rejected_spans.max(0) as u64)
        .unwrap_or(0)
}

/// Sends the batch's already-encoded request as the gRPC message (the generated client would take
/// an owned `ExportTraceServiceRequest`: a deep clone and a second encoding per attempt), and
/// decodes the response with prost.
#[derive(Default)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;
    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }
    fn decoder(&mut self) -> PreEncoded {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| {
                tonic::Status::internal(format!("cannot decode the collector's response: {e}"))
            })
    }
}

/// The TCP connector of both exporters: each connection it opens is registered as gotap's own
/// while it is open (own.rs: its requests' server spans are not exported).
#[derive(Clone)]
struct OwnConnector(HttpConnector);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tonic::codegen::Service<hyper::Uri> for OwnConnector {
    type Response = Own<TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }
    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            let own = OwnConnection::new(io.inner().local_addr().ok());
            Ok(Own { io, _own: own })
        })
    }
}

/// A connection of [`OwnConnector`]: the stream, and its registration, dropped with it.
struct Own<T> {
    io: T,
    _own: OwnConnection,
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Own<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Own<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

impl<T: Connection> Connection for Own<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub struct GrpcExporter {
    rt: Arc<Runtime>,
    client: tonic::client::Grpc<Channel>,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    endpoint: String,
}

impl GrpcExporter {
    pub fn new(rt: Arc<Runtime>, cfg: &OtlpConfig) -> Result<GrpcExporter, Error> {
        let endpoint = Endpoint::from_shared(cfg.endpoint.clone())
            .map_err(|e| {
                Error::Config(format!("invalid OTLP gRPC endpoint {}: {e}", cfg.endpoint))
            })?
            .connect_timeout(cfg.timeout);
        // Lazy: the collector may come up after gotap; connecting happens on the first export.
        // Through the connector that registers each connection as gotap's own (own.rs), with
        // tonic's own connector settings (any scheme, no Nagle).
        let channel = {
            let _guard = rt.enter();
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(cfg.timeout));
            endpoint.connect_with_connector_lazy(OwnConnector(http))
        };
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            let key = k.parse().map_err(|_| {
                Error::Config(format!(
                    "OTLP header name {k:?} is not valid for gRPC metadata"
                ))
            })?;
            let val = v.parse().map_err(|_| {
                Error::Config(format!(
                    "OTLP header {k:?} has a value that is not valid ASCII metadata"
                ))
            })?;
            headers.push((key, val));
        }
        Ok(GrpcExporter {
            rt,
            client: tonic::client::Grpc::new(channel),
            headers,
            endpoint: cfg.endpoint.clone(),
        })
    }
}

impl Exporter for GrpcExporter {
    fn name(&self) -> &str {
        "otlp-grpc"
    }
    fn needs_spans(&self) -> bool {
        false
    }
    fn export(&mut self, batch: &Batch, timeout: Duration) -> Result<u64, ExportError> {
        let mut req = tonic::Request::new(batch.encoded());
        req.extensions_mut().insert(tonic::GrpcMethod::new(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            "Export",
        ));
        for (k, v) in &self.headers {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        req.set_timeout(timeout);
        let client = &mut self.client;
        let res = self.rt.block_on(async {
            tokio::time::timeout(timeout, async {
                client
                    .ready()
                    .await
                    .map_err(|e| tonic::Status::unavailable(format!("not ready: {e}")))?;
                client
                    .unary(req, PathAndQuery::from_static(EXPORT_PATH), PreEncoded)
                    .await
            })
            .await
        });
        use tonic::Code;
        match res {
            Err(_) => Err(ExportError::Retryable(format!(
                "OTLP gRPC export to {} timed out after {timeout:?}",
                self.endpoint
            ))),
            Ok(Ok(resp)) => Ok(rejected(resp.get_ref())),
            Ok(Err(status)) => {
                let msg = format!(
                    "OTLP gRPC export to {} failed: {:?} {}",
                    self.endpoint,
                    status.code(),
                    status.message()
                );
                // The spec's retryable codes.
                match status.code() {
                    Code::Unavailable
                    | Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::OutOfRange
                    | Code::DataLoss
                    | Code::ResourceExhausted => Err(ExportError::Retryable(msg)),
                    _ => Err(ExportError::Permanent(msg)),
                }
            }
        }
    }
}

pub struct HttpExporter {
    rt: Arc<Runtime>,
    client: Client<OwnConnector, Full<Bytes>>,
    uri: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpExporter {
    pub fn new(rt: Arc<Runtime>, cfg: &OtlpConfig) -> Result<HttpExporter, Error> {
        let uri: hyper::Uri = cfg.endpoint.parse().map_err(|e| {
            Error::Config(format!("invalid OTLP HTTP endpoint {}: {e}", cfg.endpoint))
        })?;
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            let key = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                Error::Config(format!(
                    "OTLP header name {k:?} is not a valid HTTP header name"
                ))
            })?;
            let val = HeaderValue::from_str(v).map_err(|_| {
                Error::Config(format!(
                    "OTLP header {k:?} has a value that is not valid in HTTP"
                ))
            })?;
            headers.push((key, val));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.timeout));
        let client = Client::builder(TokioExecutor::new()).build(OwnConnector(connector));
        Ok(HttpExporter {
            rt,
            client,
            uri,
            headers,
        })
    }
}

impl Exporter for HttpExporter {
    fn name(&self) -> &str {
        "otlp-http"
    }
    fn needs_spans(&self) -> bool {
        false
    }
    fn export(&mut self, batch: &Batch, timeout: Duration) -> Result<u64, ExportError> {
        let body = batch.encoded();
        let mut builder =
            hyper::Request::post(self.uri.clone()).header(CONTENT_TYPE, "application/x-protobuf");
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|e| ExportError::Permanent(format!("cannot build OTLP HTTP request: {e}")))?;
        let client = &self.client;
        let uri = &self.uri;
        let res = self.rt.block_on(async {
            tokio::time::timeout(timeout, async {
                let resp = client.request(req).await.map_err(|e| {
                    ExportError::Retryable(format!(
                        "OTLP HTTP export to {uri} failed: {}",
                        error_chain(&e)
                    ))
                })?;
                let status = resp.status();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| {
                        ExportError::Retryable(format!(
                            "OTLP HTTP export to {uri}: reading the response failed: {e}"
                        ))
                    })?
                    .to_bytes();
                Ok::<_, ExportError>((status, body))
            })
            .await
        });
        let (status, body) = match res {
            Err(_) => {
                return Err(ExportError::Retryable(format!(
                    "OTLP HTTP export to {uri} timed out after {timeout:?}"
                )))
            }
            Ok(r) => r?,
        };
        if status.is_success() {
            // An empty body is a full success; anything else should be an ExportTraceServiceResponse.
            return Ok(ExportTraceServiceResponse::decode(body)
                .map(|r| rejected(&r))
                .unwrap_or(0));
        }
        let msg = format!("OTLP HTTP export to {uri} failed: HTTP {status}");
        // The spec's retryable statuses.
        match status.as_u16() {
            429 | 502 | 503 | 504 => Err(ExportError::Retryable(msg)),
            _ => Err(ExportError::Permanent(msg)),
        }
    }
}

/// hyper's errors hide the cause (connection refused…) in their source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
