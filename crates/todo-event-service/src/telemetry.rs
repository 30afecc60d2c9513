//! Logging and request instrumentation.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Installs the global subscriber: `RUST_LOG` filter (default info), text or JSON.
pub fn init(format: &str) {
    todo_telemetry::init_tracing(format);
}

/// Middleware: a span per request with the matched route (not the raw path),
/// and the HTTP metrics.
pub async fn request_layer(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!("request", %method, route = %route);
    let started = Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    crate::metrics::http_request(&route, method.as_str(), status, started.elapsed());
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request done"
        )
    });
    resp
}
