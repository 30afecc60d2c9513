//! Domain values, parsed once at the boundary and trusted afterwards.

mod task;
mod task_description;
mod task_id;
mod task_title;

pub use task::{now, status_schema, Task, TaskStatus};
pub use task_description::TaskDescription;
pub use task_id::TaskId;
pub use task_title::TaskTitle;

/// One rejected field of a request, named as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name (a JSON path for nested fields, `id` for the path id).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
