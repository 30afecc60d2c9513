//! What every handler can reach. Built by `startup`, handed to
//! `routes::router`; depends on no module that uses it.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use todo_runtime::dependency::Dependency;

use crate::auth::Auth;
use crate::outbox::EventWriter;
use crate::store::batched_writes::{Changes, Creates, Deletes};
use crate::store::batcher::Batcher;
use crate::store::tasks::TaskIds;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// Writes outbox rows.
    pub events: EventWriter,
    /// Ids for new tasks.
    pub task_ids: Arc<TaskIds>,
    /// Writes new tasks (group commit).
    pub creates: Batcher<Creates>,
    /// Writes changes to tasks (group commit).
    pub changes: Batcher<Changes>,
    /// Deletes tasks (group commit).
    pub deletes: Batcher<Deletes>,
    /// JWT verification when authentication is on.
    pub auth: Option<Arc<Auth>>,
    /// Metrics exposition.
    pub metrics: PrometheusHandle,
    /// PostgreSQL: reached and migrated yet?
    pub database: Dependency,
    /// Kafka: reached and topics provisioned yet? (The API does not need it.)
    pub kafka: Dependency,
}
