//! Logging and request instrumentation.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::extract::{CorrelationId, CORRELATION_HEADER};

/// Installs the global subscriber: `RUST_LOG` filter (default info), text or JSON.
pub fn init(format: &str) {
    todo_telemetry::init_tracing(format);
}

/// Middleware: assigns the correlation id, opens the request span (with the
/// matched route, not the raw path), records metrics and echoes the id back.
pub async fn correlation_layer(mut req: Request, next: Next) -> Response {
    let id = CorrelationId::from_header(
        req.headers()
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(id);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!("request", correlation_id = %id.0, %method, route = %route);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    crate::metrics::http_request(&route, method.as_str(), status, started.elapsed());
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request done"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id.0.to_string()) {
        resp.headers_mut().insert(CORRELATION_HEADER, v);
    }
    resp
}
