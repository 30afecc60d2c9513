//! Logging and the correlation id. Request spans by route and HTTP metrics
//! come from `todo_runtime::http`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::extract::{CorrelationId, CORRELATION_HEADER};

/// Installs the global subscriber: `RUST_LOG` filter (default info), text or JSON.
pub fn init(format: &str) {
    todo_runtime::init_tracing(format);
}

/// Middleware: assigns the correlation id (the caller's when it is a UUID),
/// puts it on every log line of the request, and echoes it back.
pub async fn correlation_layer(mut req: Request, next: Next) -> Response {
    let id = CorrelationId::from_header(
        req.headers()
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(id);
    let mut resp = next
        .run(req)
        .instrument(tracing::info_span!("correlation", correlation_id = %id.0))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id.0.to_string()) {
        resp.headers_mut().insert(CORRELATION_HEADER, v);
    }
    resp
}
