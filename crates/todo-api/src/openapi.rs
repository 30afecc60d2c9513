//! What both services' OpenAPI documents say the same way: every error answer
//! is `application/problem+json`, and a header the server adds to every answer
//! is listed on every answer.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Header, OpenApi, RefOr};

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

/// Gives every 4xx and 5xx answer with a body the media type the server
/// sends it with, `application/problem+json` ([`crate::problem::Problem`]).
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
            if let Some(content) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.to_owned(), content);
            }
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
