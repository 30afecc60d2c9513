//! What both services' OpenAPI documents say the same way: every error answer
//! is `application/problem+json`, and a header the server adds to every answer
//! is listed on every answer.

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, Header, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::ToSchema;

use crate::problem::PROBLEM_JSON;

/// Every operation of the document.
pub fn operations_mut(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// Gives every 4xx and 5xx answer whose body is a [`crate::Problem`] the
/// media type the server sends it with, `application/problem+json`.
/// The annotations say `body = Problem`, which utoipa lists as
/// `application/json`; saying the content type here, once, keeps the
/// annotations short and none of them can forget it.
pub fn errors_are_problems(doc: &mut OpenApi) {
    for op in operations_mut(doc) {
        for (status, response) in op.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let is_problem = response.content.get("application/json").is_some_and(|c| {
                matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
            });
            if is_problem {
                if let Some(content) = response.content.shift_remove("application/json") {
                    response.content.insert(PROBLEM_JSON.to_owned(), content);
                }
            }
        }
    }
}

/// The answers every operation tagged `tag` can give whatever it does, each a
/// problem document: `(status, description)`. Listed here once rather than
/// on every handler.
pub fn problems_on_every_operation(doc: &mut OpenApi, tag: &str, answers: &[(u16, &str)]) {
    for op in operations_mut(doc) {
        if !op.tags.iter().flatten().any(|t| t == tag) {
            continue;
        }
        for (status, description) in answers {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            let answer = ResponseBuilder::new()
                .description(*description)
                .content(PROBLEM_JSON, content)
                .build();
            op.responses
                .responses
                .insert(status.to_string(), RefOr::T(answer));
        }
    }
}

/// Lists `header` as `name` on every answer of every operation.
pub fn header_on_every_answer(doc: &mut OpenApi, name: &str, header: &Header) {
    for op in operations_mut(doc) {
        for response in op.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response.headers.insert(name.to_owned(), header.clone());
            }
        }
    }
}

/// The body of both services' `/ready`: each dependency's state. The status
/// is 200 while the database is up, 503 when it is down.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "database": "up", "kafka": "up"}))]
pub struct ReadyReport {
    /// `ready` (all up), `degraded` (the database up, Kafka not: the API
    /// serves) or `unavailable` (the database down).
    pub status: String,
    /// The database's state: `up` or `down`.
    pub database: String,
    /// Kafka's state, e.g. `up`, `connecting` or `down`.
    pub kafka: String,
    /// Why Kafka is not up, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub kafka_error: Option<String>,
}
