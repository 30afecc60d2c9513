//! What every handler can reach. Built by `startup`, handed to
//! `routes::router`; depends on no module that uses it.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use todo_runtime::dependency::Dependency;

use crate::auth::Auth;
use crate::service::tasks::Tasks;

/// What every handler can reach: a handle to one [`Shared`], which it derefs
/// to.
///
/// NB: axum clones the state for every extractor and layer that takes it, so
/// a clone is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of one running API.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state's contents.
pub struct Shared {
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
