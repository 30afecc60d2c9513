//! Queries of the read API.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use todo_events::{EventType, EventVersion, TaskStatus};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;
use uuid::Uuid;

/// The OpenAPI schema of an event type name.
fn event_type_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(EventType::ALL.map(EventType::as_str)))
        .build()
}

/// The OpenAPI schema of an event version.
fn event_version_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(EventVersion::ALL.map(EventVersion::as_str)))
        .build()
}

/// The OpenAPI schema of a task status that may not be known yet.
fn nullable_status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            TaskStatus::ALL
                .map(|s| serde_json::Value::from(s.as_str()))
                .into_iter()
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct AuditEntry {
    /// The event's id.
    pub event_id: Uuid,
    /// Its type.
    #[schema(schema_with = event_type_schema)]
    pub event_type: String,
    /// Its schema version.
    #[schema(schema_with = event_version_schema)]
    pub event_version: String,
    /// The task.
    #[schema(minimum = 1)]
    pub task_id: i64,
    /// The task's row version after the change (v2 events).
    pub task_version: Option<i64>,
    /// Topic it was read from.
    pub topic: String,
    /// Partition.
    #[sqlx(rename = "kafka_partition")]
    pub partition: i32,
    /// Offset.
    #[sqlx(rename = "kafka_offset")]
    pub offset: i64,
    /// Correlation id of the request that caused it.
    pub correlation_id: Uuid,
    /// W3C trace id (32 hex digits) of the request that caused it; null when
    /// its record carried no `traceparent`.
    pub trace_id: Option<String>,
    /// The envelope's timestamp.
    pub event_timestamp: DateTime<Utc>,
    /// When the change happened (payload time).
    pub occurred_at: DateTime<Utc>,
    /// When this service processed it.
    pub processed_at: DateTime<Utc>,
    /// The event, in its JSON wire form: the envelope and payload that
    /// docs/asyncapi.yaml describes for its type and version.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

const AUDIT_COLUMNS: &str =
    "event_id, event_type, event_version, task_id, task_version, topic, kafka_partition,
    kafka_offset, correlation_id, trace_id, event_timestamp, occurred_at, processed_at, event";

/// A task's events in the order they happened (by task version where known,
/// else by time).
#[tracing::instrument(skip(pool))]
pub async fn task_history(pool: &PgPool, task_id: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE task_id = $1
         ORDER BY task_version NULLS LAST, occurred_at, id"
    ))
    .bind(task_id)
    .fetch_all(pool)
    .await
}

/// The most recently processed events, newest first.
#[tracing::instrument(skip(pool))]
pub async fn recent_events(pool: &PgPool, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Current state of a task as the projection has it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ProjectedTask {
    /// The task.
    pub task_id: i64,
    /// Title (None until an event carrying it arrived).
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// `incomplete` or `complete`; null until an event carrying it arrived.
    #[schema(schema_with = nullable_status_schema)]
    pub status: Option<String>,
    /// Latest completion.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// Owner.
    pub user_id: Option<String>,
    /// Tombstone.
    pub deleted: bool,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Highest task version seen.
    pub task_version: Option<i64>,
}

/// The projected state of `task_id`.
#[tracing::instrument(skip(pool))]
pub async fn projected_task(
    pool: &PgPool,
    task_id: i64,
) -> Result<Option<ProjectedTask>, sqlx::Error> {
    sqlx::query_as(
        "SELECT task_id, title, description, status, completed_at, created_at, user_id, deleted, deleted_at, task_version
         FROM task_projection WHERE task_id = $1",
    )
    .bind(task_id)
    .fetch_optional(pool)
    .await
}

/// Events per type in one hour.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct HourlyCount {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Event type.
    #[schema(schema_with = event_type_schema)]
    pub event_type: String,
    /// Events in it.
    #[schema(minimum = 1)]
    pub count: i64,
}

/// Created-to-completed durations.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct CompletionStats {
    /// Completed tasks whose creation is known.
    #[schema(minimum = 0)]
    pub completed_tasks: i64,
    /// Mean seconds.
    pub mean_seconds: Option<f64>,
    /// Median seconds.
    pub p50_seconds: Option<f64>,
    /// 95th percentile seconds.
    pub p95_seconds: Option<f64>,
    /// Longest.
    pub max_seconds: Option<f64>,
}

/// The analytics summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    /// All-time events per type.
    pub totals: std::collections::BTreeMap<String, i64>,
    /// Per type and hour, the last `hours` hours, newest first.
    pub hourly: Vec<HourlyCount>,
    /// Completion times.
    pub completion: CompletionStats,
}

/// Counts per type (total and per hour over the last `hours`) and completion times.
#[tracing::instrument(skip(pool))]
pub async fn summary(pool: &PgPool, hours: i32) -> Result<Summary, sqlx::Error> {
    let totals: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, sum(count)::int8 FROM event_counts_hourly GROUP BY event_type ORDER BY 1")
            .fetch_all(pool)
            .await?;
    let hourly = sqlx::query_as(
        "SELECT hour, event_type, sum(count)::int8 AS count FROM event_counts_hourly
         WHERE hour >= date_trunc('hour', now()) - make_interval(hours => $1)
         GROUP BY hour, event_type
         ORDER BY hour DESC, event_type",
    )
    .bind(hours)
    .fetch_all(pool)
    .await?;
    let completion = sqlx::query_as(
        "SELECT count(*) AS completed_tasks, avg(duration_seconds) AS mean_seconds,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds) AS p50_seconds,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95_seconds,
                max(duration_seconds) AS max_seconds
         FROM task_completions",
    )
    .fetch_one(pool)
    .await?;
    Ok(Summary {
        totals: totals.into_iter().collect(),
        hourly,
        completion,
    })
}
