//! The read API: one file per resource, each exporting `router()`.

pub mod analytics;
pub mod audit;
pub mod events;
pub mod health;
pub mod openapi;

use std::collections::HashMap;
use std::ops::RangeInclusive;

use crate::error::ApiError;

/// The one integer query parameter `name` of a route that has no other: in
/// `range`, `default` when absent; any other parameter is refused, like the
/// backend's, so a misspelt one is not silently ignored.
fn query_int(
    params: &HashMap<String, String>,
    name: &'static str,
    range: RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ApiError> {
    if let Some(other) = params.keys().find(|k| k.as_str() != name) {
        return Err(ApiError::BadRequest {
            field: "query",
            message: format!("unknown query parameter `{other}` (this route takes {name})"),
        });
    }
    match params.get(name) {
        None => Ok(default),
        Some(raw) => todo_api::parse_decimal(raw, 19)
            .filter(|n| range.contains(n))
            .ok_or_else(|| ApiError::BadRequest {
                field: name,
                message: format!(
                    "must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
    }
}
