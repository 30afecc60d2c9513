//! What every handler can reach. Built by `startup`, handed to
//! `routes::router`; depends on no module that uses it.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use todo_runtime::dependency::Dependency;

use crate::auth::Auth;
use crate::service::tasks::Tasks;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database (for readiness).
    pub pool: PgPool,
    /// The task use cases.
    pub tasks: Tasks,
    /// JWT verification when authentication is on.
    pub auth: Option<Arc<Auth>>,
    /// Metrics exposition.
    pub metrics: PrometheusHandle,
    /// PostgreSQL: reached and migrated yet?
    pub database: Dependency,
    /// Kafka: reached and topics provisioned yet? (The API does not need it.)
    pub kafka: Dependency,
}
