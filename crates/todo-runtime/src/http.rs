//! HTTP plumbing both services share: the outer layers, request metrics and
//! spans by matched route, binding and graceful serving.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

/// HTTP requests by route, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// HTTP request latency by route and method.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";

/// Describes the HTTP metrics (idempotent).
pub fn describe_metrics() {
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "HTTP request latency"
    );
}

/// Middleware: a span per request named by its matched route (not the raw
/// path, which would make every task id a new series), and the HTTP metrics.
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
    let elapsed = started.elapsed();
    counter!(HTTP_REQUESTS_TOTAL, "route" => route.clone(), "method" => method.to_string(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route, "method" => method.to_string())
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "request done"
        )
    });
    resp
}

/// The outer layers of every router: request span and metrics, a request
/// timeout (503 when it fires), and panics turned into 500s.
///
/// NB: one `Router::layer` call for the three: each call wraps every route in
/// one more boxed service, cloned, allocated and polled on every request.
pub fn with_common_layers(router: Router, request_timeout: Duration) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::new())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                request_timeout,
            ))
            .layer(axum::middleware::from_fn(request_layer)),
    )
}

/// `router`'s routes answer `not_ready()` (a 503 problem) until `dependency`
/// is up, instead of waiting for a connection that is not there or querying a
/// schema that is not migrated yet.
pub fn when_up<S>(
    router: Router<S>,
    dependency: crate::dependency::Dependency,
    not_ready: fn() -> Response,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let up = dependency.is_up();
            async move {
                if up {
                    next.run(req).await
                } else {
                    not_ready()
                }
            }
        },
    ))
}

/// Binds the listener (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// Serves until `cancel`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .context("HTTP server");
    tracing::info!(ok = served.is_ok(), "HTTP server stopped");
    served
}
