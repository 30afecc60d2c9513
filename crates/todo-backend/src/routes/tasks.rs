//! `/tasks`: every change writes the task and its outbox event in one
//! statement (so one transaction and one round trip), then answers; Kafka is
//! never on the request path. Changes to an existing task read it, compute
//! the new version and write it only if the task is still at the version
//! read (optimistic concurrency), retrying when another change got there
//! first.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use todo_events::{Payload, TaskStatus};
use utoipa::{IntoParams, ToSchema};

use todo_api::parse_decimal;

use crate::domain::{now, status_schema, FieldError, Task, TaskDescription, TaskTitle};
use crate::error::{ApiError, Problem, Result};
use crate::extract::{AppJson, CurrentUser, TaskIdPath};
use crate::outbox::{payloads, Origin};
use crate::state::AppState;
use crate::store::tasks as store;

/// Largest page `GET /tasks` returns.
pub const MAX_PAGE: i64 = 500;
/// Page size when `limit` is not given.
pub const DEFAULT_PAGE: i64 = 50;
/// Reads and writes of one change before it gives up (409) because other
/// changes to the same task kept landing between its read and its write.
const MAX_ATTEMPTS: u32 = 8;

/// The task routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks", post(create_task).get(list_tasks))
        .route(
            "/tasks/{id}",
            get(get_task).put(update_task).delete(delete_task),
        )
        .route("/tasks/{id}/complete", post(complete_task))
        .layer(axum::middleware::from_fn(todo_api::bare_errors_as_problems))
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

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// Tasks in id order.
    #[schema(max_items = 500)]
    pub items: Vec<Task>,
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
    responses((status = 201, description = "Created", body = Task,
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
) -> Result<(StatusCode, HeaderMap, Json<Task>)> {
    let (title, description) = parse_both(
        TaskTitle::parse(&body.title),
        body.description.map(TaskDescription::parse).transpose(),
    )?;

    let id = state.task_ids.next(&state.pool).await?;
    let task = Task::new(id, &title, description.as_ref(), user.as_deref(), now());
    let event = state
        .events
        .prepare(payloads::created(&task), origin)
        .map_err(encode_error)?;
    state.creates.write((task.clone(), event)).await?;
    state.events.wake();

    let mut headers = HeaderMap::new();
    if let Ok(loc) = HeaderValue::from_str(&format!("/tasks/{}", task.id)) {
        headers.insert(header::LOCATION, loc);
    }
    Ok((StatusCode::CREATED, headers, Json(task)))
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
    let mut errors = Vec::new();
    let mut status = None;
    let mut limit = DEFAULT_PAGE;
    let mut after = 0i64;
    for (k, v) in &params {
        match k.as_str() {
            "status" => match v.parse::<TaskStatus>() {
                Ok(s) => status = Some(s),
                Err(_) => errors.push(FieldError::new(
                    "status",
                    "must be `incomplete` or `complete`",
                )),
            },
            "limit" => match parse_decimal(v, 19) {
                Some(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE}"),
                )),
            },
            "cursor" => match parse_decimal(v, CURSOR_DIGITS) {
                Some(n) => after = n,
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
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    let mut conn = state.pool.acquire().await?;
    let mut items = store::list(&mut conn, user.as_deref(), status, after, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|t| t.id.to_string())
    } else {
        None
    };
    Ok(Json(TaskPage { items, next_cursor }))
}

/// One task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(TaskIdParam),
    responses((status = 200, description = "The task", body = Task),
        (status = 400, description = "`id` is not a positive 64-bit integer", body = Problem),
        (status = 404, description = "No such task (for this user)", body = Problem)))]
pub async fn get_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<Task>> {
    let mut conn = state.pool.acquire().await?;
    store::get(&mut conn, id.get(), user.as_deref())
        .await?
        .map(Json)
        .ok_or(ApiError::TaskNotFound(id.get()))
}

/// Change a task's title, description or status; publishes `task.updated`
/// with the fields that changed (nothing changed: no new version, no event).
#[utoipa::path(put, path = "/tasks/{id}", request_body = UpdateTask, tag = "tasks", params(TaskIdParam),
    responses((status = 200, description = "The task after the change", body = Task),
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
) -> Result<Json<Task>> {
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

    change_task(&state, id.get(), user.as_deref(), origin, |before| {
        let new_title = title.as_ref().map_or(before.title.as_str(), |t| t.as_str());
        let new_description = match &description {
            Some(d) => d.as_ref().map(|d| d.as_str()),
            None => before.description.as_deref(),
        };
        let new_status = body.status.unwrap_or(before.status());
        if new_title == before.title
            && new_description == before.description.as_deref()
            && new_status == before.status()
        {
            return None;
        }
        let after = before.changed(new_title, new_description, new_status, now());
        let payload = payloads::updated(before, &after);
        Some((after, payload))
    })
    .await
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
    for _ in 0..MAX_ATTEMPTS {
        let task = read(&state, id.get(), user.as_deref()).await?;
        let event = state
            .events
            .prepare(payloads::deleted(&task, now()), origin)
            .map_err(encode_error)?;
        if state.deletes.write((task.id, task.version, event)).await? {
            state.events.wake();
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    Err(ApiError::Conflict(id.get()))
}

/// Mark a task complete; publishes `task.completed` (already complete: 200, no event).
#[utoipa::path(post, path = "/tasks/{id}/complete", tag = "tasks", params(TaskIdParam),
    responses((status = 200, description = "The task, complete", body = Task),
        (status = 400, description = "`id` is not a positive 64-bit integer", body = Problem),
        (status = 404, description = "No such task (for this user)", body = Problem),
        (status = 409, description = "Other changes to the task kept winning; retry", body = Problem)))]
pub async fn complete_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    origin: Origin,
    TaskIdPath(id): TaskIdPath,
) -> Result<Json<Task>> {
    change_task(&state, id.get(), user.as_deref(), origin, |before| {
        if before.status() == TaskStatus::Complete {
            return None;
        }
        let after = before.changed(
            &before.title,
            before.description.as_deref(),
            TaskStatus::Complete,
            now(),
        );
        let payload = payloads::completed(&after);
        Some((after, payload))
    })
    .await
}

/// Reads the task, asks `next` for its new state and event (`None`: nothing
/// changes, the task is answered as it is), and writes them if the task is
/// still at the version read; otherwise reads again, up to [`MAX_ATTEMPTS`].
async fn change_task(
    state: &AppState,
    id: i64,
    user: Option<&str>,
    origin: Origin,
    next: impl Fn(&Task) -> Option<(Task, Payload)>,
) -> Result<Json<Task>> {
    for _ in 0..MAX_ATTEMPTS {
        let before = read(state, id, user).await?;
        let Some((after, payload)) = next(&before) else {
            return Ok(Json(before));
        };
        let event = state
            .events
            .prepare(payload, origin)
            .map_err(encode_error)?;
        if state.changes.write((after.clone(), event)).await? {
            state.events.wake();
            return Ok(Json(after));
        }
    }
    Err(ApiError::Conflict(id))
}

/// The task as the user may see it, or 404. The connection goes back to the
/// pool before the write, which the batch writers make on their own.
async fn read(state: &AppState, id: i64, user: Option<&str>) -> Result<Task> {
    let mut conn = state.pool.acquire().await?;
    store::get(&mut conn, id, user)
        .await?
        .ok_or(ApiError::TaskNotFound(id))
}

/// An event of ours that does not encode is a bug, not the client's fault.
fn encode_error(e: todo_events::EncodeError) -> ApiError {
    ApiError::Internal(e.into())
}
