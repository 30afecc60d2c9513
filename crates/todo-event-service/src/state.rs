//! What every request handler can reach: built by `startup`, read by the
//! read API (`routes`), the console and the intakes' endpoints.

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use todo_runtime::dependency::Dependency;

use crate::intake::kafka::KafkaProbe;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The event store.
    pub pool: PgPool,
    /// PostgreSQL: reached and migrated yet?
    pub database: Dependency,
    /// Kafka readiness.
    pub kafka: KafkaProbe,
    /// Metrics exposition.
    pub metrics: PrometheusHandle,
    /// The web console's own state.
    pub console: crate::console::Console,
}
