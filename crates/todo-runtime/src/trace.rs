//! Traces: the W3C trace context (`traceparent`) carried from the HTTP request
//! through the outbox and the record's headers to the event's effect, and the
//! spans both services record along the way, exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.
//!
//! Ids always exist: the audit log stores each event's trace id, and a
//! request without a `traceparent` starts a trace. Spans are only recorded
//! when export is on; when it is off a [`Span`] is its ids and nothing else
//! (one random draw per span, no allocation, no lock), so tracing costs
//! nothing measurable (`./dev bench overhead`).
//!
//! Export goes through the OpenTelemetry SDK's batch processor (its own
//! thread, a bounded queue that drops spans rather than block or grow) and the
//! OTLP/HTTP exporter; a collector that is down costs dropped spans and one
//! log line per minute, never a refused start or a slower request.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};

pub use opentelemetry::trace::SpanKind;
pub use opentelemetry::KeyValue as Attribute;

/// The W3C header: the contract's Kafka header name is the HTTP one too.
pub use todo_events::headers::TRACEPARENT;

/// A W3C trace context: the trace, the span within it, and the sampled flag.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

/// Sampled (W3C `trace-flags` bit 0).
const SAMPLED: u8 = 0x01;

impl TraceContext {
    /// Parses a `traceparent` header: `version-traceid-spanid-flags`, lower
    /// case hex. `None` for anything else, including all-zero ids and version
    /// `ff`; per W3C the receiver then starts a new trace. A future version may
    /// append fields after the flags (`-...`), which are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim().as_bytes();
        if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let version = hex_byte(&v[0..2])?;
        if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(&v[3 + 2 * i..5 + 2 * i])?;
        }
        for (i, b) in span_id.iter_mut().enumerate() {
            *b = hex_byte(&v[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&v[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace (sampled), with a new span id.
    pub fn new_root() -> Self {
        let mut trace_id: [u8; 16] = rand::random();
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        Self {
            trace_id,
            span_id: new_span_id(),
            flags: SAMPLED,
        }
    }

    /// A span of the same trace: a new span id, the same flags.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The `traceparent` value: `00-<trace id>-<span id>-<flags>`.
    pub fn traceparent(&self) -> String {
        self.to_string()
    }

    /// The trace id, 32 lower-case hex digits (as the audit log stores it).
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id, 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// Whether the caller asked for this trace to be recorded.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    fn otel(&self) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            TraceState::default(),
        )
    }

    fn from_otel(sc: &SpanContext) -> Self {
        Self {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        }
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The trace id of a `traceparent` value, if it is valid.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    TraceContext::parse(traceparent).map(|c| c.trace_id())
}

fn new_span_id() -> [u8; 8] {
    let id: u64 = rand::random();
    id.max(1).to_be_bytes()
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(two[0])? << 4 | digit(two[1])?)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// The process's tracer: `None` while export is off.
static TRACER: OnceLock<Option<SdkTracer>> = OnceLock::new();

fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get().and_then(Option::as_ref)
}

/// Whether spans are recorded and exported.
pub fn exporting() -> bool {
    tracer().is_some()
}

/// A span: its ids always, and, while export is on, the recorded span (ended
/// and queued for export when dropped).
pub struct Span {
    context: TraceContext,
    recorded: Option<opentelemetry_sdk::trace::Span>,
}

impl Span {
    /// Starts a span named `name` as a child of `parent`, or of a new trace.
    pub fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Option<&TraceContext>,
    ) -> Self {
        Self::start_linked(name, kind, parent, std::iter::empty())
    }

    /// Like [`Span::start`], with links to other traces (a batch links to
    /// the traces of its items). `links` is not read while export is off.
    pub fn start_linked<'a>(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Option<&TraceContext>,
        links: impl IntoIterator<Item = &'a TraceContext>,
    ) -> Self {
        let Some(tracer) = tracer() else {
            return Self {
                context: parent.map_or_else(TraceContext::new_root, TraceContext::child),
                recorded: None,
            };
        };
        let cx = match parent {
            Some(p) => opentelemetry::Context::new().with_remote_span_context(p.otel()),
            None => opentelemetry::Context::new(),
        };
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_links(
                links
                    .into_iter()
                    .map(|l| opentelemetry::trace::Link::with_context(l.otel()))
                    .collect(),
            )
            .start_with_context(tracer, &cx);
        Self {
            context: TraceContext::from_otel(span.span_context()),
            recorded: Some(span),
        }
    }

    /// This span's context: what a child's parent, or a header, is.
    pub fn context(&self) -> TraceContext {
        self.context
    }

    /// Adds attributes; `attributes` is not called while export is off.
    pub fn record(&mut self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(span) = &mut self.recorded {
            span.set_attributes(attributes());
        }
    }

    /// Marks the span failed with `why` (called only while export is on).
    pub fn fail(&mut self, why: impl FnOnce() -> String) {
        if let Some(span) = &mut self.recorded {
            span.set_status(Status::error(why()));
        }
    }
}

/// Middleware: the request's span (`SERVER`, named by method and matched
/// route), a child of the caller's `traceparent` when it sent a valid one,
/// else a new trace. Handlers read its context as a [`TraceContext`]
/// extension; the answer carries it back in `traceparent`.
pub async fn request_layer(mut req: Request, next: Next) -> Response {
    let parent = req
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let name: Cow<'static, str> = if exporting() {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        format!("{} {route}", req.method()).into()
    } else {
        "".into()
    };
    let mut span = Span::start(name, SpanKind::Server, parent.as_ref());
    span.record(|| {
        vec![
            KeyValue::new("http.request.method", req.method().to_string()),
            KeyValue::new("url.path", req.uri().path().to_owned()),
        ]
    });
    let context = span.context();
    req.extensions_mut().insert(context);
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    span.record(|| {
        vec![KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        )]
    });
    if status >= 500 {
        span.fail(|| format!("HTTP {status}"));
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&context.traceparent()) {
        resp.headers_mut().insert(TRACEPARENT, v);
    }
    resp
}

/// Flushes what is queued for export when dropped (keep it for the life of
/// `main`).
#[must_use = "spans queued when this is dropped are flushed; drop it at the end of main"]
pub struct ExportGuard(Option<SdkTracerProvider>);

impl Drop for ExportGuard {
    // NB: blocks (at most 3 s) while the batch processor's thread sends what
    // is queued; it is dropped once, as `main` ends, after everything else.
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown_with_timeout(Duration::from_secs(3));
        }
    }
}

/// Turns span export on when `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and neither
/// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise).
/// The exporter reads the standard variables itself (endpoints, headers,
/// timeout; the sampler: `OTEL_TRACES_SAMPLER`, `..._ARG`; the resource:
/// `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), except the protocol,
/// which defaults to `http/protobuf` as the specification says. `service` is
/// the service name when `OTEL_SERVICE_NAME` is not set. Call once, from
/// `main`; later calls keep the first setting. Fails only on a malformed
/// setting; the collector is not contacted.
pub fn init_export(service: &str) -> anyhow::Result<ExportGuard> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint =
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let Some(endpoint) = endpoint.filter(|_| !disabled) else {
        let _ = TRACER.set(None);
        return Ok(ExportGuard(None));
    };
    let protocol =
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match protocol.as_deref().map(str::trim) {
        None | Some("http/protobuf") => opentelemetry_otlp::Protocol::HttpBinary,
        Some("http/json") => opentelemetry_otlp::Protocol::HttpJson,
        Some(other) => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL: `{other}` is not supported (http/protobuf or http/json)"
        ),
    };
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}`: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Logged::new(exporter, endpoint.clone()))
        .with_resource(resource.build())
        .build();
    if TRACER.set(Some(provider.tracer("todo"))).is_err() {
        let _ = provider.shutdown();
        return Ok(ExportGuard(None));
    }
    tracing::info!(%endpoint, ?protocol, "exporting traces over OTLP/HTTP");
    Ok(ExportGuard(Some(provider)))
}

/// An exporter whose failures are logged in one line at most once a minute,
/// with how many failed since the last line (the collector may be down for
/// hours; the services go on, and the spans of the failed batches are lost).
#[derive(Debug)]
struct Logged<E> {
    inner: E,
    endpoint: String,
    failures: AtomicU64,
    last_logged: Mutex<Option<Instant>>,
}

const LOG_EVERY: Duration = Duration::from_secs(60);

impl<E> Logged<E> {
    fn new(inner: E, endpoint: String) -> Self {
        Self {
            inner,
            endpoint,
            failures: AtomicU64::new(0),
            last_logged: Mutex::new(None),
        }
    }

    fn failed(&self, error: &dyn fmt::Display) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_logged.lock().expect("log timer lock");
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        self.failures.store(0, Ordering::Relaxed);
        tracing::warn!(endpoint = %self.endpoint, failed_exports = n, error = %error,
            "trace export failed; spans of failed exports are dropped (logged at most once a minute)");
    }
}

impl<E: SpanExporter> SpanExporter for Logged<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            self.failed(e);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let c = TraceContext::parse(GIVEN).unwrap();
        assert_eq!(c.traceparent(), GIVEN);
        assert_eq!(c.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.span_id(), "00f067aa0ba902b7");
        assert!(c.sampled());
    }

    #[test]
    fn a_child_keeps_the_trace_and_gets_a_new_span_id() {
        let c = TraceContext::parse(GIVEN).unwrap();
        let child = c.child();
        assert_eq!(child.trace_id(), c.trace_id());
        assert_ne!(child.span_id(), c.span_id());
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_future_version_with_more_fields_is_read() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let c = TraceContext::parse(v).unwrap();
        assert_eq!(c.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn new_roots_are_distinct_and_valid() {
        let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.traceparent()), Some(a));
    }

    #[test]
    fn without_export_a_span_is_its_ids() {
        let parent = TraceContext::parse(GIVEN).unwrap();
        let span = Span::start("x", SpanKind::Internal, Some(&parent));
        assert!(span.recorded.is_none() || exporting());
        assert_eq!(span.context().trace_id(), parent.trace_id());
        assert_ne!(span.context().span_id(), parent.span_id());
    }
}
