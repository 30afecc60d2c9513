//! `/openapi.json`, generated from the handlers and types.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, RefOr, Schema, Type};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo-backend",
        description = "Task API; every change becomes an event on Kafka (docs/asyncapi.yaml).\n\n\
            Every error answer is an `application/problem+json` document (RFC 9457) whose \
            `errors` names each offending field. Every answer carries `X-Correlation-ID`: \
            the caller's, when it sent one that is a UUID, otherwise a new UUID v4; the \
            events the request causes carry it too. With a configured HS256 secret, the \
            task routes take a Bearer JWT whose `sub` owns the tasks (401 without one)."
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
        super::tasks::TaskBody,
        todo_api::FieldError,
        todo_api::Problem,
        todo_api::openapi::ReadyReport,
        super::tasks::CreateTask,
        super::tasks::UpdateTask,
        super::tasks::TaskPage
    )),
    modifiers(&SharedAnswers),
    tags(
        (name = "tasks", description = "Tasks; each change publishes one event"),
        (name = "operations", description = "Liveness, readiness, metrics")
    )
)]
pub struct ApiDoc;

/// What every answer has in common: problem documents for errors, the
/// correlation id header, and the optional Bearer scheme.
struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        todo_api::openapi::errors_are_problems(doc);
        todo_api::openapi::problems_on_every_operation(
            doc,
            "tasks",
            &[
                (
                    401,
                    "No valid Bearer token (only when authentication is on)",
                ),
                (500, "Internal error (a bug; logged)"),
                (
                    503,
                    "The database is unavailable or not reached yet; retry shortly",
                ),
            ],
        );
        // NB: utoipa 5.5 writes `#[schema(min_properties = 1)]` as
        // `maxProperties: 1`, so the rule "at least one field" is set here.
        if let Some(RefOr::T(Schema::Object(update))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("UpdateTask"))
        {
            update.min_properties = Some(1);
            update.max_properties = None;
        }
        let correlation = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".into()))),
            )
            .description(Some(
                "The request's correlation id: the caller's X-Correlation-ID when it is a UUID, \
                 otherwise a new UUID v4.",
            ))
            .build();
        todo_api::openapi::header_on_every_answer(doc, "X-Correlation-ID", &correlation);
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "HS256 JWT whose `sub` owns the tasks; required only when the \
                             server is configured with JWT_HS256_SECRET.",
                        ))
                        .build(),
                ),
            );
    }
}

/// `/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn an_update_needs_at_least_one_field_and_may_have_all_three() {
        let update = &doc()["components"]["schemas"]["UpdateTask"];
        assert_eq!(update["minProperties"], 1);
        assert!(update.get("maxProperties").is_none());
        assert_eq!(update["additionalProperties"], false);
    }

    #[test]
    fn every_error_answer_is_a_problem_document_and_every_answer_names_the_correlation_id() {
        let doc = doc();
        let mut errors = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, answer) in op["responses"].as_object().unwrap() {
                    let at = format!("{method} {path} {status}");
                    assert!(answer["headers"].get("X-Correlation-ID").is_some(), "{at}");
                    if path.starts_with("/tasks")
                        && (status.starts_with('4') || status.starts_with('5'))
                    {
                        errors += 1;
                        let content = answer["content"].as_object().unwrap();
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            ["application/problem+json"],
                            "{at}"
                        );
                    }
                }
            }
        }
        assert!(errors > 30, "{errors}");
    }

    #[test]
    fn list_parameters_are_in_the_query_and_the_task_id_in_the_path() {
        let doc = doc();
        let list = doc["paths"]["/tasks"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(list.iter().all(|p| p["in"] == "query"));
        let id = &doc["paths"]["/tasks/{id}"]["get"]["parameters"][0];
        assert_eq!(
            (id["in"].as_str(), id["schema"]["minimum"].as_i64()),
            (Some("path"), Some(1))
        );
    }
}
