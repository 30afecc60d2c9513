//! `/openapi.json`, generated from the handlers and types.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::startup::AppState;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo-backend",
        description = "Task API; every change becomes an event on Kafka."
    ),
    paths(
        super::tasks::create_task,
        super::tasks::list_tasks,
        super::tasks::get_task,
        super::tasks::update_task,
        super::tasks::delete_task,
        super::tasks::complete_task,
        super::health::health,
        super::health::ready,
        super::health::metrics,
    ),
    components(schemas(
        crate::domain::Task,
        crate::domain::FieldError,
        crate::error::Problem,
        super::tasks::CreateTask,
        super::tasks::UpdateTask,
        super::tasks::TaskPage
    ))
)]
pub struct ApiDoc;

/// `/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
