//! Domain values, parsed once at the boundary and trusted afterwards.

mod task;
mod task_description;
mod task_id;
mod task_title;

pub use task::{now, status_schema, Task, TaskStatus};
pub use task_description::TaskDescription;
pub use task_id::TaskId;
pub use task_title::TaskTitle;

/// One rejected field of a request, named as the client sent it: the one
/// both services' problem documents carry.
pub use todo_api::FieldError;
