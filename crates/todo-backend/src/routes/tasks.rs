//! `/tasks`: each handler parses the request, calls one use case of
//! `service::tasks` and maps its result to the answer.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use todo_events::TaskStatus;
use utoipa::{IntoParams, ToSchema};

use todo_api::parse_decimal;

use crate::domain::{status_schema, FieldError, Task, TaskDescription, TaskTitle};
use crate::error::{ApiError, Problem, Result};
use crate::extract::{AppJson, CurrentUser, TaskIdPath};
use crate::outbox::Origin;
use crate::service::tasks::{self as service, Edit};
use crate::state::AppState;

/// Largest page `GET /tasks` returns.
pub const MAX_PAGE: i64 = 500;
/// Page size when `limit` is not given.
pub const DEFAULT_PAGE: i64 = 50;

/// The task routes. Error answers that no handler wrote become problem
/// documents in [`super::router`]'s outermost layer.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks", post(create_task).get(list_tasks))
        .route(
            "/tasks/{id}",
            get(get_task).put(update_task).delete(delete_task),
        )
        .route("/tasks/{id}/complete", post(complete_task))
}

/// Body of `POST /tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "buy milk", "description": "2 litres, semi-skimmed"}))]
pub struct CreateTask {
    /// 1 to 255 characters after trimming.
    #[schema(schema_with = TaskTitle::request_schema)]
    pub title: String,
    /// At most 10 000 characters; absent or `null`: none.
    #[serde(default)]
    #[schema(schema_with = TaskDescription::nullable_schema)]
    pub description: Option<String>,
}

/// Body of `PUT /tasks/{id}`: at least one of the fields; `description: null`
/// clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "buy oat milk", "status": "complete"}))]
pub struct UpdateTask {
    /// New title.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(schema_with = TaskTitle::request_schema)]
    pub title: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = TaskDescription::nullable_schema)]
    pub description: Option<Option<String>>,
    /// New status.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(schema_with = status_schema)]
    pub status: Option<TaskStatus>,
}

/// Distinguishes a field that is absent (`None`) from one that is `null`.
fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A field that may be absent (`None`) but not `null`, as the document says.
/// NB: read as an `Option` first: serde_json reports a `null` enum as a
/// syntax error (400 malformed JSON), not as the field's error (422).
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom(
            "must not be null (leave the field out to keep it)",
        )),
    }
}

// NB: its doc line is the schema's description in the OpenAPI document.
/// A task as stored and as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Task)]
#[schema(example = json!({
    "id": 42, "title": "buy milk", "description": null, "status": "incomplete",
    "user_id": null, "created_at": "2026-11-27T10:00:00.123456Z",
    "updated_at": "2026-11-27T10:00:00.123456Z", "completed_at": null, "version": 1
}))]
pub struct TaskBody {
    /// Task id.
    #[schema(minimum = 1)]
    pub id: i64,
    /// Title (1 to 255 characters).
    #[schema(schema_with = TaskTitle::response_schema)]
    pub title: String,
    /// Optional description (at most 10 000 characters).
    #[schema(schema_with = TaskDescription::nullable_schema)]
    pub description: Option<String>,
    /// `incomplete` or `complete`.
    #[schema(schema_with = status_schema)]
    pub status: TaskStatus,
    /// Owner (the JWT subject) when authentication is on.
    pub user_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was completed, if it is.
    pub completed_at: Option<DateTime<Utc>>,
    /// Row version: 1 after create, +1 on every change.
    #[schema(minimum = 1)]
    pub version: i64,
}

impl From<Task> for TaskBody {
    fn from(t: Task) -> Self {
        Self {
            id: t.id,
            title: t.title,
            description: t.description,
            status: t.status,
            user_id: t.user_id,
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
            version: t.version,
        }
    }
}

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// Tasks in id order.
    #[schema(max_items = 500)]
    pub items: Vec<TaskBody>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{1,18}$", nullable = false, example = "42")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /tasks`; any other parameter is refused (400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListQuery {
    /// Only tasks with this status.
    #[param(schema_with = status_schema, required = false)]
    status: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500, default = 50, nullable = false)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$", nullable = false, example = "42")]
    cursor: Option<String>,
}

/// Longest `cursor`: a task id of up to 18 digits (ids come from a sequence
/// that will not reach 10^18).
const CURSOR_DIGITS: usize = 18;

/// The `{id}` of the task routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TaskIdParam {
    /// The task's id: a positive 64-bit integer in decimal digits.
    #[param(minimum = 1, example = 42)]
    id: i64,
}

/// Both fields parsed, or every field error at once (a client fixing its
/// request should not have to discover its mistakes one by one).
fn parse_both<A, B>(
    a: std::result::Result<A, FieldError>,
    b: std::result::Result<B, FieldError>,
) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(ApiError::Validation(
            [a.err(), b.err()].into_iter().flatten().collect(),
        )),
    }
}

/// Create a task; publishes `task.created`.
#[utoipa::path(post, path = "/tasks", request_body = CreateTask, tag = "tasks",
    responses((status = 201, description = "Created", body = TaskBody,
            headers(("Location" = String, description = "`/tasks/{id}` of the new task"))),
        (status = 400, description = "The body is not valid JSON", body = Problem),
        (status = 413, description = "Body over 64 KiB", body = Problem),
        (status = 415, description = "Body not sent as application/json", body = Problem),
        (status = 422, description = "A field is missing, unknown, mistyped or breaks its rule; `errors` names each", body = Problem)))]
pub async fn create_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    origin: Origin,
    AppJson(body): AppJson<CreateTask>,
) -> Result<(StatusCode, HeaderMap, Json<TaskBody>)> {
    let (title, description) = parse_both(
        TaskTitle::parse(&body.title),
        body.description.map(TaskDescription::parse).transpose(),
    )?;

    let task = state
        .tasks
        .create(user.as_deref(), origin, &title, description.as_ref())
        .await?;

    let mut headers = HeaderMap::new();
    if let Ok(loc) = HeaderValue::from_str(&format!("/tasks/{}", task.id)) {
        headers.insert(header::LOCATION, loc);
    }
    Ok((StatusCode::CREATED, headers, Json(task.into())))
}

/// List tasks, optionally by status, in pages.
#[utoipa::path(get, path = "/tasks", params(ListQuery), tag = "tasks",
    responses((status = 200, description = "A page of tasks in id order", body = TaskPage),
        (status = 400, description = "A query parameter is invalid or unknown; `errors` names each", body = Problem)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<TaskPage>> {
    let query = parse_list_query(&params)?;
    let page = state.tasks.list(user.as_deref(), query).await?;
    Ok(Json(TaskPage {
        items: page.items.into_iter().map(TaskBody::from).collect(),
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// The query of `GET /tasks`, or every bad parameter at once.
fn parse_list_query(params: &HashMap<String, String>) -> Result<service::ListQuery> {
    let mut errors = Vec::new();
    let mut query = service::ListQuery {
        status: None,
        after: 0,
        limit: DEFAULT_PAGE,
    };
    for (k, v) in params {
        match k.as_str() {
            "status" => match v.parse::<TaskStatus>() {
                Ok(s) => query.status = Some(s),
                Err(_) => errors.push(FieldError::new(
                    "status",
                    "must be `incomplete` or `complete`",
                )),
            },
            "limit" => match parse_decimal(v, 19) {
                Some(n) if (1..=MAX_PAGE).contains(&n) => query.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE}"),
                )),
            },
            "cursor" => match parse_decimal(v, CURSOR_DIGITS) {
                Some(n) => query.after = n,
                _ => errors.push(FieldError::new(
                    "cursor",
                    "must be a next_cursor returned by this API",
                )),
            },
            other => errors.push(FieldError::new(
                other,
                "unknown query parameter (status, limit, cursor)",
            )),
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

/// One task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(TaskIdParam),
    responses((status = 200, description = "The task", body = TaskBody),
        (status = 400, description = "`id` is not a positive 64-bit integer", body = Problem),
        (status = 404, description = "No such task (for this user)", body = Problem)))]
pub async fn get_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<TaskBody>> {
    state
        .tasks
        .get(user.as_deref(), id)
        .await
        .map(|t| Json(t.into()))
}

/// Change a task's title, description or status; publishes `task.updated`
/// with the fields that changed (nothing changed: no new version, no event).
#[utoipa::path(put, path = "/tasks/{id}", request_body = UpdateTask, tag = "tasks", params(TaskIdParam),
    responses((status = 200, description = "The task after the change", body = TaskBody),
        (status = 400, description = "`id` is invalid, or the body is not valid JSON", body = Problem),
        (status = 404, description = "No such task (for this user)", body = Problem),
        (status = 409, description = "Other changes to the task kept winning; retry", body = Problem),
        (status = 413, description = "Body over 64 KiB", body = Problem),
        (status = 415, description = "Body not sent as application/json", body = Problem),
        (status = 422, description = "A field is missing, unknown, mistyped or breaks its rule; `errors` names each", body = Problem)))]
pub async fn update_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    origin: Origin,
    TaskIdPath(id): TaskIdPath,
    AppJson(body): AppJson<UpdateTask>,
) -> Result<Json<TaskBody>> {
    if body.title.is_none() && body.description.is_none() && body.status.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "body",
            "give at least one of title, description, status",
        )]));
    }
    let (title, description) = parse_both(
        body.title.as_deref().map(TaskTitle::parse).transpose(),
        body.description
            .map(|d| d.map(TaskDescription::parse).transpose())
            .transpose(),
    )?;
    let edit = Edit {
        title,
        description,
        status: body.status,
    };

    state
        .tasks
        .update(user.as_deref(), origin, id, &edit)
        .await
        .map(|t| Json(t.into()))
}

/// Delete a task; publishes `task.deleted`.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", params(TaskIdParam),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "`id` is not a positive 64-bit integer", body = Problem),
        (status = 404, description = "No such task (for this user)", body = Problem),
        (status = 409, description = "Other changes to the task kept winning; retry", body = Problem)))]
pub async fn delete_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    origin: Origin,
    TaskIdPath(id): TaskIdPath,
) -> Result<StatusCode> {
    state.tasks.delete(user.as_deref(), origin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mark a task complete; publishes `task.completed` (already complete: 200, no event).
#[utoipa::path(post, path = "/tasks/{id}/complete", tag = "tasks", params(TaskIdParam),
    responses((status = 200, description = "The task, complete", body = TaskBody),
        (status = 400, description = "`id` is not a positive 64-bit integer", body = Problem),
        (status = 404, description = "No such task (for this user)", body = Problem),
        (status = 409, description = "Other changes to the task kept winning; retry", body = Problem)))]
pub async fn complete_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    origin: Origin,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<TaskBody>> {
    state
        .tasks
        .complete(user.as_deref(), origin, id)
        .await
        .map(|t| Json(t.into()))
}
