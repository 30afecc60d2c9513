//! `/openapi.json`, generated from the handlers and types.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

/// The read API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo-event-service",
        description = "The read API of the service that consumes the task events \
            (docs/asyncapi.yaml): each task's audit trail, the latest events, analytics. \
            Every error answer is an `application/problem+json` document (RFC 9457) \
            whose `errors` names the offending parameter."
    ),
    paths(
        super::audit::task_audit,
        super::events::recent,
        super::analytics::summary,
        super::health::health,
        super::health::ready,
        super::health::metrics,
    ),
    components(schemas(
        crate::store::AuditEntry,
        crate::store::ProjectedTask,
        crate::store::Summary,
        crate::store::HourlyCount,
        crate::store::CompletionStats,
        super::audit::TaskAudit,
        todo_api::Problem,
        todo_api::FieldError,
        todo_api::openapi::ReadyReport,
    )),
    modifiers(&ErrorsAreProblems),
    tags(
        (name = "audit", description = "What the service recorded of each event"),
        (name = "analytics", description = "Counts and completion times"),
        (name = "operations", description = "Liveness, readiness, metrics")
    )
)]
pub struct ApiDoc;

struct ErrorsAreProblems;

impl Modify for ErrorsAreProblems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        todo_api::openapi::errors_are_problems(doc);
        for tag in ["audit", "analytics"] {
            todo_api::openapi::problems_on_every_operation(
                doc,
                tag,
                &[
                    (500, "Internal error (a bug; logged)"),
                    (
                        503,
                        "The database is unavailable or not reached yet; retry shortly",
                    ),
                ],
            );
        }
    }
}

/// `/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_and_every_error_answer_is_a_problem_document() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/audit/tasks/{id}",
            "/events",
            "/analytics/summary",
            "/health",
            "/ready",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        for (path, item) in paths.iter().filter(|(p, _)| *p != "/ready") {
            for (status, answer) in item["get"]["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    if let Some(content) = answer.get("content") {
                        let types: Vec<_> = content.as_object().unwrap().keys().collect();
                        assert_eq!(types, ["application/problem+json"], "{path} {status}");
                    }
                }
            }
        }
    }
}
