//! What both services' HTTP APIs do the same way, so that a client of one
//! knows the other: every error answer is an `application/problem+json`
//! document naming the offending fields ([`Problem`]), integers in paths and
//! query strings follow one strict rule ([`parse_decimal`]), and the OpenAPI
//! documents say both ([`openapi`]).

pub mod openapi;
mod problem;

pub use problem::{bare_errors_as_problems, parse_decimal, FieldError, Problem, PROBLEM_JSON};
